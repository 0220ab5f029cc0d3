"""Fabrics for the fabric tests: a generated ``small`` one and a hand-built ``tiny`` one.

``tiny`` is written out entry by entry so a test can break exactly one thing in it
and know the index of every entry: two sites joined by OTV; module ``a-m1``
(switched, vPC, NX-OS) with ``a-agg1``/``a-agg2``, ToRs ``a-t1``/``a-t2`` and hosts
``a-h1``, ``a-h2`` (on ``a-t1``) and ``a-h3`` (on ``a-t2``); module ``b-m1`` (routed)
with its pair, ToR ``b-t1`` and host ``b-h1``.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from fuyun.domain.enums import FabricKind, L2Extension, L2Technology, SwitchRole
from fuyun.fabric.catalog import FLAVORS, SERVER_MODELS
from fuyun.fabric.generator import generate
from fuyun.fabric.spec import (
    FabricSpec,
    HostSpec,
    InterconnectSpec,
    ModuleSpec,
    SiteSpec,
    SwitchSpec,
)

CAPS = {
    "mac_capacity": 16_384,
    "arp_capacity": 8_192,
    "vlan_capacity": 1_000,
    "acl_capacity": 2_000,
}
AGG_CAPS = {
    "mac_capacity": 131_072,
    "arp_capacity": 65_536,
    "vlan_capacity": 4_000,
    "acl_capacity": 16_000,
}


def _agg(name: str, module: str, address: str) -> SwitchSpec:
    return SwitchSpec(
        name=name,
        module=module,
        role=SwitchRole.AGGREGATION,
        mgmt_address=address,
        port_count=64,
        **AGG_CAPS,
    )


def _tor(name: str, module: str, address: str, uplinks: list[str]) -> SwitchSpec:
    return SwitchSpec(
        name=name, module=module, role=SwitchRole.TOR, mgmt_address=address, uplinks=uplinks, **CAPS
    )


def _host(name: str, tor: str, address: str) -> HostSpec:
    return HostSpec(name=name, tor=tor, model="std-2010-1g", mgmt_address=address)


def build_tiny() -> FabricSpec:
    a_pair, b_pair = ["a-agg1", "a-agg2"], ["b-agg1", "b-agg2"]
    return FabricSpec(
        name="tiny",
        server_models=list(SERVER_MODELS),
        flavors=list(FLAVORS),
        sites=[
            SiteSpec(name="a", city="Shenzhen", aggregate=IPv4Network("10.0.0.0/16")),
            SiteSpec(name="b", city="Shanghai", aggregate=IPv4Network("10.1.0.0/16")),
        ],
        interconnects=[
            InterconnectSpec(name="a-b", site_a="a", site_b="b", l2_extension=L2Extension.OTV)
        ],
        modules=[
            ModuleSpec(
                name="a-m1",
                site="a",
                fabric_kind=FabricKind.SWITCHED_CLOS,
                l2_technology=L2Technology.VPC,
            ),
            ModuleSpec(name="b-m1", site="b", fabric_kind=FabricKind.ROUTED_CLOS),
        ],
        switches=[
            _agg("a-agg1", "a-m1", "192.0.2.1"),  # 0
            _agg("a-agg2", "a-m1", "192.0.2.2"),  # 1
            _tor("a-t1", "a-m1", "192.0.2.3", a_pair),  # 2
            _tor("a-t2", "a-m1", "192.0.2.4", a_pair),  # 3
            _agg("b-agg1", "b-m1", "192.0.2.5"),  # 4
            _agg("b-agg2", "b-m1", "192.0.2.6"),  # 5
            _tor("b-t1", "b-m1", "192.0.2.7", b_pair),  # 6
        ],
        hosts=[
            _host("a-h1", "a-t1", "192.0.2.11"),  # 0
            _host("a-h2", "a-t1", "192.0.2.12"),  # 1
            _host("a-h3", "a-t2", "192.0.2.13"),  # 2
            _host("b-h1", "b-t1", "192.0.2.14"),  # 3
        ],
    )


def with_entry(spec: FabricSpec, list_name: str, index: int, **changes: Any) -> FabricSpec:
    """``spec`` with one entry of one list changed, *without* validation, so a test can
    also make an entry that the file format would refuse (a missing capacity)."""
    entries = list(getattr(spec, list_name))
    entries[index] = entries[index].model_copy(update=changes)
    return spec.model_copy(update={list_name: entries})


def with_list(spec: FabricSpec, list_name: str, entries: list[Any]) -> FabricSpec:
    return spec.model_copy(update={list_name: entries})


@pytest.fixture
def tiny() -> FabricSpec:
    return build_tiny()


@pytest.fixture(scope="session")
def small() -> FabricSpec:
    return generate("small")
