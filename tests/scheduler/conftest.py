"""A hand-built cluster: module A switched (2 aggs), module B routed; 2 ToRs x 2 hosts each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from fuyun.scheduler.model import Cluster, HostSlot, ModuleInfo, SwitchSlot

SITE = uuid.uuid4()


@dataclass
class World:
    cluster: Cluster
    ids: dict[str, uuid.UUID]

    def host(self, name: str) -> HostSlot:
        return self.cluster.hosts[self.ids[name]]

    def switch(self, name: str) -> SwitchSlot:
        return self.cluster.switches[self.ids[name]]


def build() -> World:
    c = Cluster(cpu_ratio=2.0, ram_ratio=1.0)
    ids: dict[str, uuid.UUID] = {}
    for mod, switched in (("A", True), ("B", False)):
        mid = ids[mod] = uuid.uuid4()
        aggs = []
        for i in (1, 2):
            aid = ids[f"{mod}-agg{i}"] = uuid.uuid4()
            c.switches[aid] = SwitchSlot(aid, f"{mod}-agg{i}", mid, "aggregation", 100, 100, 10)
            aggs.append(aid)
        c.modules[mid] = ModuleInfo(mid, mod, SITE, switched, tuple(aggs))
        for t in (1, 2):
            tid = ids[f"{mod}-t{t}"] = uuid.uuid4()
            c.switches[tid] = SwitchSlot(tid, f"{mod}-t{t}", mid, "tor", 50, 50, 10)
            for h in (1, 2):
                name = f"{mod}-t{t}-h{h}"
                hid = ids[name] = uuid.uuid4()
                c.add_host(
                    HostSlot(
                        hid,
                        name,
                        SITE,
                        mid,
                        tid,
                        "active",
                        "kvm",
                        vcpus=8,
                        ram_mb=32768,
                        disk_gb=500,
                        nic_mbps=1000,
                        max_vms=4,
                    )
                )
    return World(c, ids)


@pytest.fixture
def world() -> World:
    return build()
