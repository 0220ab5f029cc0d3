"""The in-memory copy a plan runs on: the scheduler's cluster plus what IPAM needs.

Built from a :class:`~fuyun.fabric.spec.FabricSpec` (a preset, a YAML file, or the
live store exported as one) and, optionally, a :class:`Baseline` of what the live
store already uses.

Ids are small integers handed out in name order, so two builds of the same fabric
are equal and a seeded plan is repeatable to the byte. The scheduler treats ids as
opaque keys; integers hash in C where a ``uuid.UUID`` hashes in Python, which is
a third of the scheduler's time at a million VMs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import cast

from fuyun.domain.enums import FabricKind, HostState, SwitchRole
from fuyun.fabric.spec import FabricSpec
from fuyun.ipam.addresses import IPNetwork
from fuyun.scheduler.model import Cluster, HostSlot, ModuleInfo, SwitchSlot


class Ids:
    """Stable integer ids for named fabric objects, one sequence for every kind."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}

    def __call__(self, kind: str, name: str) -> uuid.UUID:
        key = (kind, name)
        if key not in self._ids:
            self._ids[key] = len(self._ids) + 1
        return cast(uuid.UUID, self._ids[key])


@dataclass(frozen=True)
class VlanPoolParams:
    """The per-module VLAN pool, as the settings make it (``FUYUN_VLAN_*``)."""

    first: int = 100
    last: int = 3999
    reserved: tuple[int, ...] = (1002, 1003, 1004, 1005)

    @property
    def size(self) -> int:
        return self.last - self.first + 1 - len([v for v in self.reserved if self.first <= v])


@dataclass(frozen=True)
class SiteInfo:
    id: uuid.UUID
    name: str
    aggregate: IPNetwork | None


@dataclass(frozen=True)
class Interconnect:
    name: str
    site_a: uuid.UUID
    site_b: uuid.UUID
    l2_extension: str


@dataclass(frozen=True)
class ExistingNetwork:
    """A network of the live store: its module and, per VLAN segment, ports per ToR."""

    key: str
    module: str
    segments: tuple[tuple[int, dict[str, int]], ...]  # (VLAN, ToR name -> ports)


@dataclass(frozen=True)
class ExistingVm:
    """A running VM of the live store, so N+1 re-places it too."""

    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    bandwidth_mbps: int
    network: str | None = None  # ExistingNetwork.key of its first NIC
    segment: int = 0
    group: str | None = None
    group_policy: str = "anti-affinity"
    group_level: str = "host"


@dataclass
class Baseline:
    """What the live store already holds, laid over the fabric before a plan runs.

    Keyed by names so that it applies to a changed copy of the fabric too (a
    remedy or a what-if adds modules; the existing ones keep their load).
    """

    host_use: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict)
    switch_use: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    vlans_taken: dict[str, set[int]] = field(default_factory=dict)  # module -> VLAN ids
    carved: dict[str, list[IPNetwork]] = field(default_factory=dict)  # site -> subnets
    networks: list[ExistingNetwork] = field(default_factory=list)
    vms: list[ExistingVm] = field(default_factory=list)


@dataclass
class World:
    """Everything a plan mutates, in memory."""

    name: str
    cluster: Cluster
    sites: dict[uuid.UUID, SiteInfo]
    module_tech: dict[uuid.UUID, str | None]
    interconnects: list[Interconnect]
    vlan_pool: VlanPoolParams
    switch_by_name: dict[str, uuid.UUID] = field(default_factory=dict)
    baseline: Baseline = field(default_factory=Baseline)

    def module_name(self, module: uuid.UUID) -> str:
        return self.cluster.modules[module].name

    def site_of(self, module: uuid.UUID) -> uuid.UUID:
        return self.cluster.modules[module].site

    def modules_of(self, site: uuid.UUID) -> list[uuid.UUID]:
        return sorted(
            (m for m, info in self.cluster.modules.items() if info.site == site),
            key=lambda m: self.cluster.modules[m].name,
        )

    def l2_link(self, a: uuid.UUID, b: uuid.UUID) -> Interconnect | None:
        """An interconnect between two sites that extends layer 2, if any."""
        for ic in self.interconnects:
            if {ic.site_a, ic.site_b} == {a, b} and ic.l2_extension != "none":
                return ic
        return None


def build_world(
    spec: FabricSpec,
    *,
    cpu_ratio: float = 4.0,
    ram_ratio: float = 1.0,
    vlan_pool: VlanPoolParams | None = None,
    baseline: Baseline | None = None,
) -> World:
    """Lay the fabric (and the baseline's load) out as scheduler slots."""
    cluster = Cluster(cpu_ratio=cpu_ratio, ram_ratio=ram_ratio)
    name_id = Ids()
    for s in sorted(spec.sites, key=lambda s: s.name):
        name_id("site", s.name)
    for m in sorted(spec.modules, key=lambda m: m.name):
        name_id("module", m.name)
    sites = {
        name_id("site", s.name): SiteInfo(name_id("site", s.name), s.name, s.aggregate)
        for s in spec.sites
    }
    base = baseline or Baseline()
    aggs: dict[str, list[uuid.UUID]] = {}
    switch_by_name: dict[str, uuid.UUID] = {}
    tor_module: dict[str, str] = {}
    for sw in sorted(spec.switches, key=lambda s: s.name):
        sid = name_id("switch", sw.name)
        mac, arp, vlans = base.switch_use.get(sw.name, (0, 0, 0))
        cluster.switches[sid] = SwitchSlot(
            sid,
            sw.name,
            name_id("module", sw.module),
            sw.role.value,
            sw.mac_capacity,
            sw.arp_capacity,
            sw.vlan_capacity,
            mac,
            arp,
            vlans,
        )
        switch_by_name[sw.name] = sid
        if sw.role is SwitchRole.AGGREGATION:
            aggs.setdefault(sw.module, []).append(sid)
        else:
            tor_module[sw.name] = sw.module
    module_tech: dict[uuid.UUID, str | None] = {}
    module_site: dict[str, uuid.UUID] = {}
    for m in spec.modules:
        mid = name_id("module", m.name)
        module_site[m.name] = name_id("site", m.site)
        cluster.modules[mid] = ModuleInfo(
            mid,
            m.name,
            name_id("site", m.site),
            m.fabric_kind is FabricKind.SWITCHED_CLOS,
            tuple(aggs.get(m.name, ())),
        )
        module_tech[mid] = m.l2_technology.value if m.l2_technology else None
    models = {sm.name: sm for sm in spec.server_models}
    for h in sorted(spec.hosts, key=lambda h: h.name):
        if h.tor is None or h.tor not in tor_module:
            continue  # uncabled hosts take no VMs
        model = models[h.model]
        module = tor_module[h.tor]
        used = base.host_use.get(h.name, (0, 0, 0, 0, 0))
        cluster.add_host(
            HostSlot(
                name_id("host", h.name),
                h.name,
                module_site[module],
                name_id("module", module),
                name_id("switch", h.tor),
                h.state.value if isinstance(h.state, HostState) else str(h.state),
                h.hypervisor.value,
                model.cores,
                model.ram_gb * 1024,
                model.disk_gb,
                model.nic_count * model.nic_speed_gbps * 1000,
                h.max_vms,
                *used,
            )
        )
    links = [
        Interconnect(
            ic.name, name_id("site", ic.site_a), name_id("site", ic.site_b), ic.l2_extension.value
        )
        for ic in spec.interconnects
    ]
    return World(
        name=spec.name,
        cluster=cluster,
        sites=sites,
        module_tech=module_tech,
        interconnects=links,
        vlan_pool=vlan_pool or VlanPoolParams(),
        switch_by_name=switch_by_name,
        baseline=base,
    )
