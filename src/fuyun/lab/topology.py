"""What a lab is made of, as a pure function of a fabric: bridges and trunks.

Each host becomes a bridge that fuyun's ``ovs`` driver drives (found by
``external_ids:fuyun-host``); each ToR a bridge with a trunk to each of its hosts
and one to its module's aggregation bridge. An aggregation *pair* is one bridge
(the first of the pair): two parallel trunks would be a loop, and the lab runs
no spanning tree. Modules are not joined to each other, since VLANs are
allocated per module. Bridge names are short (Linux allows 15 characters) and
carry the lab's tag, so several labs — or other users of Open vSwitch — never
collide.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from fuyun.fabric.spec import FabricSpec


@dataclass(frozen=True)
class LabBridge:
    name: str
    role: str  # host | tor | aggregation
    fabric_name: str


@dataclass(frozen=True)
class LabPlan:
    bridges: tuple[LabBridge, ...]
    trunks: tuple[tuple[str, str], ...]  # (lower bridge, upper bridge)
    # module -> the bridge its network node (tenant gateways, DHCP/DNS) attaches to: the
    # aggregation bridge, which every host of the module reaches; without one, the first ToR.
    service_bridges: tuple[tuple[str, str], ...] = ()

    def host_bridges(self) -> dict[str, str]:
        return {b.fabric_name: b.name for b in self.bridges if b.role == "host"}


def plan(spec: FabricSpec, tag: str, hosts: set[str] | None = None) -> LabPlan:
    """The lab for ``spec`` (optionally only ``hosts`` and the switches above them)."""
    chosen = [h for h in spec.hosts if h.tor and (hosts is None or h.name in hosts)]
    by_tor: dict[str, list[str]] = defaultdict(list)
    for h in chosen:
        assert h.tor is not None
        by_tor[h.tor].append(h.name)
    switches = {s.name: s for s in spec.switches}
    bridges: list[LabBridge] = []
    trunks: list[tuple[str, str]] = []
    agg_bridge: dict[str, str] = {}
    service: dict[str, str] = {}
    for t_index, tor in enumerate(sorted(by_tor), start=1):
        tor_bridge = f"fl{tag}t{t_index}"
        bridges.append(LabBridge(tor_bridge, "tor", tor))
        for h_index, host in enumerate(sorted(by_tor[tor]), start=1):
            name = f"fl{tag}t{t_index}h{h_index}"
            bridges.append(LabBridge(name, "host", host))
            trunks.append((name, tor_bridge))
        spec_tor = switches.get(tor)
        uplinks = sorted(spec_tor.uplinks) if spec_tor else []
        if uplinks:
            agg = uplinks[0]
            if agg not in agg_bridge:
                agg_bridge[agg] = f"fl{tag}a{len(agg_bridge) + 1}"
                bridges.append(LabBridge(agg_bridge[agg], "aggregation", agg))
            trunks.append((tor_bridge, agg_bridge[agg]))
            agg_module = switches[agg].module if agg in switches else None
            if agg_module:
                service[agg_module] = agg_bridge[agg]
        if spec_tor and spec_tor.module:
            service.setdefault(spec_tor.module, tor_bridge)
    too_long = [b.name for b in bridges if len(b.name) > 15]
    if too_long:
        raise ValueError(f"lab bridge names over 15 characters: {too_long[:3]}")
    return LabPlan(tuple(bridges), tuple(trunks), tuple(sorted(service.items())))
