"""N+1: can any one host, ToR or site fail and every VM still be re-placed?

For each failure domain the domain's hosts are marked failed and every VM on them
is placed again by the real scheduler, respecting its anti-affinity group and
layer-2 reach: a VM keeps its IP only where its VLAN can go — the same module
(any ToR of a switched CLOS, only its own ToR in a routed CLOS), or, when a whole
site is lost, a module of a site joined by an interconnect that extends layer 2
(OTV, VPLS, direct). A VM of a lost site with no such link comes back with a new
address in a surviving site. Everything a check changes is put back before the
next, so domains are judged independently on the plan's end state.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fuyun.ipam.l2 import SegmentView, port_joins, port_leaves
from fuyun.planning.attribution import attribute
from fuyun.planning.report import RESOURCES
from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import GroupNeed, HostSlot, NetworkNeed
from fuyun.scheduler.plugins.affinity import unit_of

if TYPE_CHECKING:
    from fuyun.planning.simulate import Simulation

KINDS = ("host", "tor", "site")


@dataclass
class DomainCheck:
    kind: str
    name: str
    vms: int = 0
    kept_ip: int = 0
    new_ip: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    example: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "vms": self.vms,
            "kept_ip": self.kept_ip,
            "new_ip": self.new_ip,
            "failed": self.failed,
            "ok": self.ok,
            "reasons": dict(self.reasons.most_common()),
            "example": self.example,
        }


@dataclass
class NPlusOne:
    checked: dict[str, int]
    total: dict[str, int]
    domains: list[DomainCheck]

    @property
    def failing(self) -> list[DomainCheck]:
        return [d for d in self.domains if not d.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "total": self.total,
            "ok": not self.failing,
            "failing": [d.to_dict() for d in self.failing],
            "domains": [d.to_dict() for d in self.domains],
        }


class _Undo:
    """What a check changed, to be put back exactly."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.hosts: dict[uuid.UUID, tuple[Any, ...]] = {}
        self.switches: dict[uuid.UUID, tuple[int, int, int]] = {}
        self.dicts: list[tuple[dict[Any, int], dict[Any, int]]] = []
        self._saved: set[int] = set()

    def host(self, h: HostSlot) -> None:
        if h.id not in self.hosts:
            self.hosts[h.id] = (
                h.state, h.used_vcpus, h.used_ram_mb, h.used_disk_gb, h.used_bandwidth_mbps,
                h.vm_count,
            )  # fmt: skip

    def switch(self, sw_id: uuid.UUID) -> None:
        sw = self.sim.w.cluster.switches[sw_id]
        if sw_id not in self.switches:
            self.switches[sw_id] = (sw.used_mac, sw.used_arp, sw.used_vlans)

    def mapping(self, d: dict[Any, int]) -> None:
        if id(d) not in self._saved:
            self._saved.add(id(d))
            self.dicts.append((d, dict(d)))

    def restore(self) -> None:
        c = self.sim.w.cluster
        for hid, (state, vc, ram, disk, bw, n) in self.hosts.items():
            h = c.hosts[hid]
            c.module_vms[h.module] += n - h.vm_count
            h.state, h.used_vcpus, h.used_ram_mb = state, vc, ram
            h.used_disk_gb, h.used_bandwidth_mbps, h.vm_count = disk, bw, n
        for hid in self.hosts:
            h = c.hosts[hid]
            c.set_state(hid, h.state)
        for sw_id, (mac, arp, vlans) in self.switches.items():
            sw = c.switches[sw_id]
            sw.used_mac, sw.used_arp, sw.used_vlans = mac, arp, vlans
        for live, saved in self.dicts:
            live.clear()
            live.update(saved)


def check(sim: Simulation, *, kinds: tuple[str, ...] = KINDS, limit: int = 200) -> NPlusOne:
    """Judge up to ``limit`` domains of each kind, the most loaded first."""
    c = sim.w.cluster
    domains: dict[str, list[tuple[str, list[HostSlot]]]] = {
        "host": [(h.name, [h]) for h in c.hosts.values() if h.vm_count],
        "tor": [
            (c.switches[t].name, hosts)
            for t, hosts in c.hosts_by_tor.items()
            if t in c.switches and any(h.vm_count for h in hosts)
        ],
        "site": [
            (site.name, [h for h in c.hosts.values() if h.site == sid])
            for sid, site in sim.w.sites.items()
        ],
    }
    out = NPlusOne(checked={}, total={}, domains=[])
    for kind in kinds:
        ranked = sorted(domains[kind], key=lambda d: (-sum(h.vm_count for h in d[1]), d[0]))
        out.total[kind] = len(ranked)
        out.checked[kind] = min(limit, len(ranked))
        for name, hosts in ranked[:limit]:
            out.domains.append(_domain(sim, kind, name, hosts))
    return out


def _domain(sim: Simulation, kind: str, name: str, hosts: list[HostSlot]) -> DomainCheck:
    c = sim.w.cluster
    undo = _Undo(sim)
    result = DomainCheck(kind, name)
    lost_sites = {h.site for h in hosts} if kind == "site" else set()
    for h in hosts:
        undo.host(h)
        c.set_state(h.id, "failed")
    moving: list[tuple[HostSlot, tuple[int, int, int, str], int]] = []
    for h in hosts:
        for key, n in sim.placements.get(h.id, {}).items():
            moving.append((h, key, n))
    moving.sort(key=lambda m: (m[0].name, m[1]))
    for h, key, n in moving:
        for _ in range(n):
            _leave(sim, undo, h, key)
    for _h, key, n in moving:
        for _ in range(n):
            result.vms += 1
            _replace(sim, undo, key, lost_sites, result)
    undo.restore()
    return result


def _view(sim: Simulation, net_index: int, seg_index: int) -> tuple[Any, Any]:
    net = sim.networks[net_index]
    seg = net.segments[seg_index]
    module = sim.w.cluster.modules[net.module]
    return net, SegmentView(seg.vlan, net.switched, module.aggregation, seg.span)


def _apply(sim: Simulation, undo: _Undo, deltas: dict[uuid.UUID, Any]) -> None:
    c = sim.w.cluster
    for sw, d in deltas.items():
        if sw in c.switches:
            undo.switch(sw)
            c.add_switch_use(sw, d.mac, d.arp, d.vlans)


def _leave(sim: Simulation, undo: _Undo, h: HostSlot, key: tuple[int, int, int, str]) -> None:
    net_index, seg_index, g, flavor = key
    c = sim.w.cluster
    if net_index >= 0:
        net, view = _view(sim, net_index, seg_index)
        ports = view.tor_ports.get(h.tor, 0)
        # A routed-clos VLAN stays anchored to its ToR (its gateway lives there), so the
        # last port below it is not taken away: the VM may only come back there.
        if ports > 1 or (ports == 1 and net.switched):
            undo.mapping(view.tor_ports)
            _apply(sim, undo, port_leaves(view, h.tor, 1).deltas)
            view.tor_ports[h.tor] -= 1
    if g >= 0:
        group = sim.groups[g]
        undo.mapping(group.need.members_at)
        group.need.members_at[unit_of(h, group.level)] -= 1  # type: ignore[index]
    undo.host(h)
    c.release(h.id, sim.demand[flavor])


def _targets(
    sim: Simulation, net_index: int, seg_index: int, lost_sites: set[uuid.UUID]
) -> list[tuple[NetworkNeed | None, dict[Any, int], str]]:
    """Where the VM may go, in order: keeping its IP first, then with a new one."""
    if net_index < 0:
        return [(None, {}, "kept")]  # no NIC: any host will do
    net, view = _view(sim, net_index, seg_index)
    site = sim.w.site_of(net.module)
    if site not in lost_sites:
        return [(net.need_for(seg_index), view.tor_ports, "kept")]
    out: list[tuple[NetworkNeed | None, dict[Any, int], str]] = []
    alive = sorted(
        (s for s in sim.w.sites if s not in lost_sites), key=lambda s: sim.w.sites[s].name
    )
    key = uuid.UUID(int=net_index)
    for how in ("kept", "new"):
        for other in alive:
            if how == "kept" and sim.w.l2_link(site, other) is None:
                continue
            for m in sim.w.modules_of(other):
                info = sim.w.cluster.modules[m]
                tag = (net_index, seg_index, m) if how == "kept" else (-1 - net_index, 0, m)
                span = sim.stretched.setdefault(tag, {})
                out.append((NetworkNeed(key, m, info.switched, span, 1), span, how))
    return out


def _replace(
    sim: Simulation,
    undo: _Undo,
    key: tuple[int, int, int, str],
    lost_sites: set[uuid.UUID],
    result: DomainCheck,
) -> None:
    net_index, seg_index, g, flavor = key
    groups: tuple[GroupNeed, ...] = ()
    if g >= 0:
        undo.mapping(sim.groups[g].need.members_at)
        groups = (sim.groups[g].need,)
    demand = sim.demand[flavor]
    first_reason = ""
    for need, span, how in _targets(sim, net_index, seg_index, lost_sites):
        req = Request(demand, (need,) if need else (), groups, strategy=sim.s.strategy)
        decision = sim.sched.select(req)
        host = decision.host
        if host is None:
            if not first_reason:
                resource, detail = attribute(sim.w, req, decision, sim.sched)
                first_reason = f"{RESOURCES.get(resource, resource)}: {detail}"
            continue
        undo.host(host)
        sim.w.cluster.claim(host.id, demand)
        if need is not None:
            aggs = sim.w.cluster.modules[need.module].aggregation
            seg_view = SegmentView(0, need.switched, aggs, span)
            _apply(sim, undo, port_joins(seg_view, host.tor, 1).deltas)
            undo.mapping(span)
            span[host.tor] = span.get(host.tor, 0) + 1
        for gneed in groups:
            unit = unit_of(host, gneed.level)
            gneed.members_at[unit] = gneed.members_at.get(unit, 0) + 1  # type: ignore[index]
        if how == "kept":
            result.kept_ip += 1
        else:
            result.new_ip += 1
        return
    result.failed += 1
    reason = first_reason or "no surviving site to go to"
    result.reasons[reason.split(":")[0]] += 1
    if not result.example:
        where = f"tenant {sim.networks[net_index].tenant}" if net_index >= 0 else "no network"
        result.example = f"a {flavor} VM ({where}): {reason}"
