"""Utilization figures of a simulation: per step, per module, per switch, per address plan."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from fuyun.planning.report import AddressWaste, SpanStats, StepStats, SwitchLoad, Usage
from fuyun.planning.world import World

if TYPE_CHECKING:
    from fuyun.planning.simulate import Simulation


def _hosts(sim: Simulation) -> dict[Any, list[int]]:
    """Per module: [vms, max_vms, used vCPU, vCPU, used RAM, RAM, used Mbit/s, Mbit/s]."""
    c = sim.w.cluster
    out: dict[Any, list[int]] = defaultdict(lambda: [0] * 8)
    for h in c.hosts.values():
        row = out[h.module]
        if h.state == "active":
            row[1] += h.max_vms
            row[3] += int(h.vcpus * c.cpu_ratio)
            row[5] += int(h.ram_mb * c.ram_ratio)
            row[7] += h.nic_mbps
        row[0] += h.vm_count
        row[2] += h.used_vcpus
        row[4] += h.used_ram_mb
        row[6] += h.used_bandwidth_mbps
    return out


def step_stats(sim: Simulation, step: int) -> StepStats:
    per = _hosts(sim)
    tot = [sum(r[i] for r in per.values()) for i in range(8)]
    allocated = sum(s.used for n in sim.networks for seg in n.segments for s in seg.subnets)
    carved = sum(s.capacity for n in sim.networks for seg in n.segments for s in seg.subnets)
    space = sum(p.size for p in sim.site_pools.values())
    space_used = sum(p.carved_addresses for p in sim.site_pools.values())
    vlans = sum(p.used for p in sim.ipam.vlan_pools.values())
    vlan_cap = sum(p.params.size for p in sim.ipam.vlan_pools.values())
    tor_mac = agg_mac = arp = 0.0
    for sw in sim.w.cluster.switches.values():
        mac = sw.used_mac / sw.mac_capacity if sw.mac_capacity else 0.0
        if sw.role == "aggregation":
            agg_mac = max(agg_mac, mac)
        else:
            tor_mac = max(tor_mac, mac)
        arp = max(arp, sw.used_arp / sw.arp_capacity if sw.arp_capacity else 0.0)
    return StepStats(
        step=step,
        vms=sim.placed,
        unplaced=sim.unplaced,
        vcpu=Usage(tot[2], tot[3]),
        ram=Usage(tot[4], tot[5]),
        density=Usage(tot[0], tot[1]),
        nic=Usage(tot[6], tot[7]),
        ip=Usage(allocated, carved),
        space=Usage(space_used, space),
        vlans=Usage(vlans, vlan_cap),
        tor_mac_max=round(100 * tor_mac, 2),
        agg_mac_max=round(100 * agg_mac, 2),
        arp_max=round(100 * arp, 2),
    )


def module_rows(sim: Simulation) -> list[dict[str, Any]]:
    """Each module's load at the end and the first resource it ran out of."""
    c = sim.w.cluster
    per = _hosts(sim)
    first: dict[str, Any] = {}
    for e in sim.exhaustion:
        if e.scope == "module" and e.name not in first:
            first[e.name] = e
    worst: dict[Any, float] = defaultdict(float)
    for sw in c.switches.values():
        for used, cap in ((sw.used_mac, sw.mac_capacity), (sw.used_arp, sw.arp_capacity)):
            if cap:
                worst[sw.module] = max(worst[sw.module], 100 * used / cap)
    rows = []
    for mid, info in sorted(c.modules.items(), key=lambda kv: kv[1].name):
        r = per.get(mid, [0] * 8)
        e = first.get(info.name)
        rows.append(
            {
                "module": info.name,
                "site": sim.w.sites[info.site].name if info.site in sim.w.sites else "",
                "fabric": "switched-clos" if info.switched else "routed-clos",
                "l2_technology": sim.w.module_tech.get(mid),
                "hosts": c.module_hosts[mid],
                "vms": r[0],
                "density_pct": Usage(r[0], r[1]).pct,
                "vcpu_pct": Usage(r[2], r[3]).pct,
                "ram_pct": Usage(r[4], r[5]).pct,
                "nic_pct": Usage(r[6], r[7]).pct,
                "networks": sim.module_networks[mid],
                "vlans": sim.ipam.vlan_pools[mid].used,
                "switch_table_max_pct": round(worst[mid], 2),
                "first_exhausted": None if e is None else e.resource,
                "first_step": None if e is None else e.step,
            }
        )
    return rows


def switch_loads(world: World) -> list[SwitchLoad]:
    c = world.cluster
    return [
        SwitchLoad(
            sw.name,
            c.modules[sw.module].name if sw.module in c.modules else "",
            sw.role,
            Usage(sw.used_vlans, sw.vlan_capacity),
            Usage(sw.used_mac, sw.mac_capacity),
            Usage(sw.used_arp, sw.arp_capacity),
        )
        for sw in c.switches.values()
    ]


def address_waste(sim: Simulation) -> AddressWaste:
    subnets = [s for n in sim.networks for seg in n.segments for s in seg.subnets]
    return AddressWaste(
        growth=sim.s.growth,
        networks=len(sim.networks),
        subnets=len(subnets),
        growth_subnets=sum(1 for s in subnets if s.growth),
        growth_vlans=sum(len(n.segments) - 1 for n in sim.networks),
        allocated=sum(s.used for s in subnets),
        carved=sum(s.cidr.num_addresses for s in subnets),
        reserved=sum(s.reserved for s in subnets),
        boundary_loss=sum(s.reserved for s in subnets if s.growth),
        free=sum(s.capacity - s.used for s in subnets),
    )


def span_stats(sim: Simulation) -> SpanStats:
    sizes = [
        sum(1 for n in seg.span.values() if n > 0) for net in sim.networks for seg in net.segments
    ]
    live = [s for s in sizes if s]
    return SpanStats(
        networks=len(sim.networks),
        segments=len(sizes),
        max_tors=max(live, default=0),
        mean_tors=round(sum(live) / len(live), 2) if live else 0.0,
    )
