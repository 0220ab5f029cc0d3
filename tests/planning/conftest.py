"""Tiny fabrics built by hand, so every exhaustion point can be worked out on paper.

The server model ``tiny`` has 2 cores (8 vCPU at the default 4.0 ratio), 8 GiB,
100 GB disk and one 1G NIC; ``s1.small`` asks 1 vCPU, 2 GiB, 20 GB and 100 Mbit/s,
so RAM allows 4 and disk 5 per host: the host's ``max_vms`` (default 3) binds.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Network

from fuyun.domain.enums import FabricKind, L2Extension, L2Technology, SwitchRole
from fuyun.fabric.catalog import FLAVORS
from fuyun.fabric.spec import (
    FabricSpec,
    HostSpec,
    InterconnectSpec,
    ModuleSpec,
    ServerModelSpec,
    SiteSpec,
    SwitchSpec,
)
from fuyun.planning.scenario import Scenario

TINY = ServerModelSpec(name="tiny", cores=2, ram_gb=8, disk_gb=100, nic_count=1, nic_speed_gbps=1)


def fabric(
    *,
    sites: tuple[str, ...] = ("s1",),
    kind: str = "switched-clos",
    modules_per_site: int = 1,
    tors: int = 2,
    hosts: int = 2,
    max_vms: int = 3,
    aggregate: str = "10.0.0.0/16",
    tor_mac: int = 16_000,
    tor_arp: int = 8_000,
    tor_vlans: int = 1_000,
    link: str = "none",
) -> FabricSpec:
    """``sites`` x ``modules_per_site`` modules of ``tors`` ToRs x ``hosts`` hosts."""
    fk = FabricKind(kind)
    tech = L2Technology.VPC if fk is FabricKind.SWITCHED_CLOS else None
    site_specs, modules, switches, host_specs = [], [], [], []
    net = IPv4Network(aggregate)
    for i, site in enumerate(sites):
        agg_net = IPv4Network((int(net.network_address) + i * net.num_addresses, net.prefixlen))
        site_specs.append(SiteSpec(name=site, aggregate=agg_net))
        for m in range(1, modules_per_site + 1):
            mod = f"{site}-m{m}"
            modules.append(ModuleSpec(name=mod, site=site, fabric_kind=fk, l2_technology=tech))
            aggs = [f"{mod}-agg{a}" for a in (1, 2)]
            for a in aggs:
                switches.append(
                    SwitchSpec(
                        name=a,
                        module=mod,
                        role=SwitchRole.AGGREGATION,
                        mac_capacity=128_000,
                        arp_capacity=64_000,
                        vlan_capacity=4_000,
                        acl_capacity=1_000,
                    )
                )
            for t in range(1, tors + 1):
                tor = f"{mod}-t{t}"
                switches.append(
                    SwitchSpec(
                        name=tor,
                        module=mod,
                        role=SwitchRole.TOR,
                        uplinks=aggs,
                        mac_capacity=tor_mac,
                        arp_capacity=tor_arp,
                        vlan_capacity=tor_vlans,
                        acl_capacity=1_000,
                    )
                )
                for h in range(1, hosts + 1):
                    host_specs.append(
                        HostSpec(name=f"{tor}-h{h}", tor=tor, model="tiny", max_vms=max_vms)
                    )
    links = [
        InterconnectSpec(name=f"ic-{a}-{b}", site_a=a, site_b=b, l2_extension=L2Extension(link))
        for a, b in itertools.pairwise(sites)
    ]
    return FabricSpec(
        name="tiny",
        server_models=[TINY],
        flavors=list(FLAVORS),
        sites=site_specs,
        interconnects=links,
        modules=modules,
        switches=switches,
        hosts=host_specs,
    )


def scenario(**kw: object) -> Scenario:
    """One small-flavor tenant, no groups, no growth unless asked."""
    base: dict[str, object] = {
        "name": "hand",
        "steps": 3,
        "tenants": 1,
        "new_tenants_per_step": 0,
        "initial_vms": (5, 5),
        "growth_per_step": 0.0,
        "flavors": (("s1.small", 1.0),),
        "anti_affinity_share": 0.0,
    }
    base.update(kw)
    return Scenario(**base)  # type: ignore[arg-type]
