"""Can a VM move there keeping its IP and MAC, and what will the network change?

A plan answers before anything moves. It classifies the move (``same-tor``,
``same-module``, ``cross-module``, ``cross-site``), checks the target host with
the scheduler's filters, checks each port's VLAN against the fabric kinds and the
interconnects (a routed CLOS confines a VLAN to its ToR; a switched CLOS carries
it across its module; another module needs an L2 extension, which the fabric
offers only between sites), and counts exactly what each switch's MAC, ARP and
VLAN tables gain while the VM moves and give back afterwards. The answer is yes
with those changes, or no with every reason found — not only the first.

With no target host, the scheduler picks one within the scope asked for.
Read-only: the plan runs in a read session and claims nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.domain.enums import EnforcementPoint, FabricKind, L2Extension
from fuyun.domain.errors import Conflict, InvalidInput
from fuyun.domain.vm_states import VmState
from fuyun.ipam.addresses import to_address, unpack
from fuyun.ipam.l2 import port_leaves
from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Demand, GroupNeed, NetworkNeed
from fuyun.scheduler.plugins.affinity import unit_of
from fuyun.services import l2fabric
from fuyun.services.inventory import resolve_ref
from fuyun.services.l2fabric import TableChange
from fuyun.store.models import (
    Host,
    Interconnect,
    IpAllocation,
    Module,
    ModuleLink,
    Network,
    Port,
    Segment,
    ServerGroup,
    Site,
    Switch,
    VlanAllocation,
    VlanPool,
    Vm,
)

SCOPES = ("same-tor", "same-module", "cross-module", "cross-site")
MOVABLE = (VmState.ACTIVE.value, VmState.STOPPED.value)
# Filters whose answer the plan gives itself, in more detail (per port, per switch).
_OWN_CHECKS = ("network-reachability", "switch-capacity")
PICK_TRIES = 6


@dataclass(frozen=True)
class Target:
    """Where to: one host, or a scope the scheduler chooses within (all None: anywhere)."""

    host: str | None = None
    tor: str | None = None
    module: str | None = None
    site: str | None = None
    strategy: str | None = None  # pack | spread; the scheduler's default when None
    avoid: frozenset[uuid.UUID] = frozenset()  # hosts the scheduler must not pick


@dataclass(frozen=True)
class PortMove:
    port_id: str
    network: str
    vlan: int
    mac: str
    ips: list[str]
    span: str  # in words: unchanged, or which ToR joins and over what
    interconnect: str | None = None
    extend: list[TableChange] = field(default_factory=list)  # claimed before the move
    shrink: list[TableChange] = field(default_factory=list)  # given back after it


@dataclass
class MigrationPlan:
    vm_id: str
    vm: str
    tenant_id: str
    state: str
    source_host: str
    source_tor: str
    target_host: str | None = None
    target_tor: str | None = None
    target_host_id: str | None = None
    scope: str | None = None
    feasible: bool = False
    chosen_by: str = "operator"
    reasons: list[str] = field(default_factory=list)
    ports: list[PortMove] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # enforcement programmed at the target
    notes: list[str] = field(default_factory=list)

    @property
    def keeps_ip(self) -> bool:
        return self.feasible

    def changes(self) -> list[str]:
        """The network changes the move makes, in the order it makes them."""
        out = []
        for p in self.ports:
            out.append(f"port {p.mac} ({', '.join(p.ips)}) on VLAN {p.vlan}: {p.span}")
            out += [
                f"  claim {c.switch} {c.table} {c.used} -> {c.after} of {c.capacity}"
                for c in p.extend
            ]
            out += [
                f"  after the move {c.switch} {c.table} {c.used} -> {c.after}" for c in p.shrink
            ]
        out += [f"program {d} before the VM arrives" for d in self.devices]
        return out


def scope_of(source: Host, target: Host) -> str:
    if source.tor_id == target.tor_id:
        return "same-tor"
    if source.module_id == target.module_id:
        return "same-module"
    if source.site_id == target.site_id:
        return "cross-module"
    return "cross-site"


# -- the network's reach ---------------------------------------------------------------


def _best_link(s: Session, model: Any, end_a: Any, end_b: Any, a: uuid.UUID, b: uuid.UUID) -> Any:
    """The ``model`` row joining ``a`` and ``b`` (its ends ``end_a``/``end_b``) either way
    round, preferring one that extends L2; None if there is none."""
    rows = list(
        s.scalars(
            select(model).where(((end_a == a) & (end_b == b)) | ((end_a == b) & (end_b == a)))
        )
    )
    rows.sort(key=lambda link: (link.l2_extension == L2Extension.NONE.value, link.name))
    return rows[0] if rows else None


def interconnect_between(s: Session, a: uuid.UUID, b: uuid.UUID) -> Interconnect | None:
    """The interconnect joining two sites, preferring one that extends L2."""
    return _best_link(s, Interconnect, Interconnect.site_a_id, Interconnect.site_b_id, a, b)


def module_link_between(s: Session, a: uuid.UUID, b: uuid.UUID) -> ModuleLink | None:
    """The link joining two modules of a site, preferring one that extends L2."""
    return _best_link(s, ModuleLink, ModuleLink.module_a_id, ModuleLink.module_b_id, a, b)


def l2_reach(
    s: Session, segment: Segment, home: Module, target: Host, span_tors: set[uuid.UUID]
) -> tuple[str | None, Interconnect | ModuleLink | None]:
    """Why the VLAN cannot reach ``target``'s ToR (None if it can), and over what link."""
    if target.tor_id in span_tors:
        return None, None
    routed = home.fabric_kind == FabricKind.ROUTED_CLOS.value
    if target.module_id == home.id:
        if routed and span_tors:
            tors = ", ".join(sorted(_names(s, Switch, span_tors)))
            return (
                f"routed-clos module {home.name} confines VLAN {segment.vlan} to ToR {tors}",
                None,
            )
        return None, None
    if routed:
        return (
            f"routed-clos module {home.name} cannot extend VLAN {segment.vlan} beyond its ToR",
            None,
        )
    dest = s.get(Module, target.module_id)
    assert dest is not None
    if dest.fabric_kind == FabricKind.ROUTED_CLOS.value:
        return (
            f"module {dest.name} is routed-clos: VLAN {segment.vlan} cannot reach its ToRs",
            None,
        )
    ic: Interconnect | ModuleLink | None
    if dest.site_id == home.site_id:
        ic = module_link_between(s, home.id, dest.id)
        if ic is None:
            site = s.get(Site, home.site_id)
            return (
                f"modules {home.name} and {dest.name} of site {site.name if site else '?'} are "
                "joined by routing only: no module link extends L2 between them",
                None,
            )
        if ic.l2_extension == L2Extension.NONE.value:
            return f"module link {ic.name} does not extend L2 (l2_extension none)", ic
    else:
        ic = interconnect_between(s, home.site_id, dest.site_id)
        if ic is None:
            names = _names(s, Site, {home.site_id, dest.site_id})
            return f"no interconnect between sites {' and '.join(sorted(names))}", None
        if ic.l2_extension == L2Extension.NONE.value:
            return f"interconnect {ic.name} does not extend L2 (l2_extension none)", ic
    clash = s.scalar(
        select(VlanAllocation.id)
        .join(VlanPool, VlanPool.id == VlanAllocation.pool_id)
        .where(
            VlanPool.module_id == dest.id,
            VlanAllocation.vlan == segment.vlan,
            VlanAllocation.segment_id != segment.id,
        )
        .limit(1)
    )
    if clash is not None:
        return (
            f"VLAN {segment.vlan} is in use in module {dest.name}; extending it over "
            f"{ic.name} would merge two networks",
            ic,
        )
    return None, ic


def reachable_modules(s: Session, home: Module) -> frozenset[uuid.UUID]:
    """Modules a VLAN of ``home`` can be extended to (switched at both ends): of its own
    site over a module link, of other sites over an interconnect, extending L2."""
    if home.fabric_kind != FabricKind.SWITCHED_CLOS.value:
        return frozenset()
    out = set()
    for a, b in s.execute(
        select(ModuleLink.module_a_id, ModuleLink.module_b_id)
        .join(
            Module,
            ((Module.id == ModuleLink.module_a_id) | (Module.id == ModuleLink.module_b_id))
            & (Module.id != home.id),
        )
        .where(
            (ModuleLink.module_a_id == home.id) | (ModuleLink.module_b_id == home.id),
            ModuleLink.l2_extension != L2Extension.NONE.value,
            Module.fabric_kind == FabricKind.SWITCHED_CLOS.value,
        )
    ):
        out.add(b if a == home.id else a)
    extends: dict[uuid.UUID, bool] = {}
    for mod_id, site_id in s.execute(
        select(Module.id, Module.site_id).where(
            Module.site_id != home.site_id, Module.fabric_kind == FabricKind.SWITCHED_CLOS.value
        )
    ):
        if site_id not in extends:
            ic = interconnect_between(s, home.site_id, site_id)
            extends[site_id] = ic is not None and ic.l2_extension != L2Extension.NONE.value
        if extends[site_id]:
            out.add(mod_id)
    return frozenset(out)


def _names(s: Session, model: Any, ids: Iterable[uuid.UUID]) -> list[str]:
    return list(s.scalars(select(model.name).where(model.id.in_(list(ids)))))


# -- one target host -------------------------------------------------------------------


def _ports(s: Session, vm: Vm) -> list[tuple[Port, Segment, Network, Module, list[str]]]:
    out = []
    for port in s.scalars(select(Port).where(Port.vm_id == vm.id).order_by(Port.name)):
        segment = s.get(Segment, port.segment_id)
        network = s.get(Network, port.network_id)
        assert segment is not None and network is not None
        module = s.get(Module, network.module_id)
        assert module is not None
        ips = [
            str(to_address(unpack(a), f))
            for a, f in s.execute(
                select(IpAllocation.address, IpAllocation.family)
                .where(IpAllocation.port_id == port.id)
                .order_by(IpAllocation.family, IpAllocation.address)
            )
        ]
        out.append((port, segment, network, module, ips))
    return out


def demand_of(vm: Vm) -> Demand:
    return Demand(vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps)


def request_for(
    rt: Any,
    s: Session,
    vm: Vm,
    source: Host,
    *,
    demand: Demand | None = None,
    strategy: str | None = None,
) -> Request:
    """The scheduler's request for this VM elsewhere: its networks (with the modules
    their VLANs can be extended to) and its group, counting it out of its source."""
    nets = list(
        s.scalars(
            select(Network)
            .join(Port, Port.network_id == Network.id)
            .where(Port.vm_id == vm.id)
            .order_by(Port.name)
        )
    )
    needs: list[NetworkNeed] = []
    reach: dict[uuid.UUID, frozenset[uuid.UUID]] = {}
    for need, net in zip(rt.placement.network_needs(s, nets), nets, strict=True):
        if net.module_id not in reach:
            home = s.get(Module, net.module_id)
            assert home is not None
            reach[net.module_id] = reachable_modules(s, home)
        needs.append(replace(need, extended=reach[net.module_id]))
    groups: tuple[GroupNeed, ...] = ()
    if vm.group_id is not None:
        group = s.get(ServerGroup, vm.group_id)
        if group is not None:
            g = rt.placement.group_need(s, group)
            slot = rt.placement.scheduler().cluster.hosts.get(source.id)
            members = dict(g.members_at)
            if slot is not None:
                unit = unit_of(slot, g.level)
                members[unit] = max(0, members.get(unit, 0) - 1)  # type: ignore[call-overload]
            groups = (replace(g, members_at=members),)
    return Request(
        demand=demand or demand_of(vm),
        networks=tuple(needs),
        groups=groups,
        avoid=frozenset({source.id}),
        strategy=strategy or rt.placement.strategy,
    )


def assess(
    rt: Any,
    s: Session,
    vm: Vm,
    target: Host,
    *,
    demand: Demand | None = None,
    chosen_by: str = "operator",
    in_flight: bool = False,
) -> MigrationPlan:
    """Every reason ``vm`` cannot move to ``target`` keeping its addresses, or the changes.

    ``in_flight``: the move has started (the VM is ``migrating``, the target claimed),
    so only the network is judged again.
    """
    source = s.get(Host, vm.host_id) if vm.host_id else None
    if source is None:
        raise Conflict("the VM runs on no host", field="vm_id", code="invalid_state")
    src_tor, dst_tor = s.get(Switch, source.tor_id), s.get(Switch, target.tor_id)
    assert src_tor is not None and dst_tor is not None
    plan = MigrationPlan(
        vm_id=str(vm.id),
        vm=vm.name,
        tenant_id=str(vm.tenant_id),
        state=vm.state,
        source_host=source.name,
        source_tor=src_tor.name,
        target_host=target.name,
        target_tor=dst_tor.name,
        target_host_id=str(target.id),
        scope=scope_of(source, target),
        chosen_by=chosen_by,
    )
    reasons = plan.reasons
    if vm.state not in MOVABLE and not in_flight:
        reasons.append(f"the VM is {vm.state}; only an active or stopped VM moves")
    if target.id == source.id:
        reasons.append(f"the VM already runs on {target.name}")
    sched = rt.placement.scheduler()
    slot = sched.cluster.hosts.get(target.id)
    if slot is not None and target.id != source.id and not in_flight:
        req = replace(request_for(rt, s, vm, source, demand=demand), avoid=frozenset())
        for name, why in sched.verdicts(req, slot):
            if why is not None and name not in _OWN_CHECKS:
                reasons.append(f"{name}: {why}")
    ports = _ports(s, vm)
    for port, segment, network, home, ips in ports:
        reasons += _port_move(s, plan, port, segment, network, home, ips, source, target)
    plan.devices = _devices(s, target, dst_tor, [p for p, *_ in ports])
    plan.notes.append(
        "security groups and QoS are per-port data: they move with the port, unchanged"
    )
    plan.feasible = not reasons
    return plan


def _port_move(
    s: Session,
    plan: MigrationPlan,
    port: Port,
    segment: Segment,
    network: Network,
    home: Module,
    ips: list[str],
    source: Host,
    target: Host,
) -> list[str]:
    view = l2fabric.segment_view(s, segment, home)
    move = PortMove(str(port.id), network.name, segment.vlan, port.mac, ips, span="unchanged")
    if source.tor_id == target.tor_id:
        plan.ports.append(move)
        return []
    why, ic = l2_reach(s, segment, home, target, view.tors)
    if why is not None:
        plan.ports.append(replace(move, span="cannot reach", interconnect=ic.name if ic else None))
        return [f"network {network.name}: {why}"]
    cross = target.module_id != home.id
    try:
        extend = l2fabric.bind(s, segment, home, target, len(ips), dry_run=True, extended=cross)
    except Conflict as exc:
        plan.ports.append(replace(move, span="cannot reach"))
        return [f"network {network.name}: {exc.message}"]
    after = dict(view.tor_ports)
    after[target.tor_id] = after.get(target.tor_id, 0) + 1
    leaves = port_leaves(replace(view, tor_ports=after), source.tor_id, len(ips))
    switches = {sw.id: sw for sw in s.scalars(select(Switch).where(Switch.id.in_(leaves.deltas)))}
    shrink = []
    for sw_id, d in sorted(leaves.deltas.items(), key=lambda kv: switches[kv[0]].name):
        sw = switches[sw_id]
        for table, delta, used, cap in (
            ("mac", d.mac, sw.used_mac, sw.mac_capacity),
            ("arp", d.arp, sw.used_arp, sw.arp_capacity),
            ("vlans", d.vlans, sw.used_vlans, sw.vlan_capacity),
        ):
            if delta:
                # Counted after the extension's claim, as the clean-up will find them.
                claimed = sum(
                    c.after - c.used for c in extend if (c.switch, c.table) == (sw.name, table)
                )
                shrink.append(
                    TableChange(sw.name, table, used + claimed, used + claimed + delta, cap)
                )
    joins = "already carried" if target.tor_id in view.tors else "joins the span"
    over = f" over {ic.name} ({ic.l2_extension})" if ic is not None else ""
    left = " and leaves the source ToR" if source.tor_id in leaves.left else ""
    target_tor = s.get(Switch, target.tor_id)
    move = replace(
        move,
        span=f"ToR {target_tor.name if target_tor else '?'} {joins}{over}{left}",
        interconnect=ic.name if ic else None,
        extend=extend,
        shrink=shrink,
    )
    plan.ports.append(move)
    return [
        f"network {network.name}: switch {c.switch}: {c.table} table would hold "
        f"{c.after} of {c.capacity}"
        for c in extend
        if not c.fits
    ]


def _devices(s: Session, target: Host, tor: Switch, ports: list[Port]) -> list[str]:
    module = s.get(Module, target.module_id)
    assert module is not None
    ep = module.enforcement_point
    if ep == EnforcementPoint.VSWITCH.value:
        return [f"host {target.name} ({target.vswitch}, vswitch)"]
    if ep == EnforcementPoint.VM_IPTABLES.value:
        return [f"guest iptables of port {p.mac} (travels with the VM)" for p in ports]
    return [f"ToR {tor.name} ({ep})"]


# -- choosing a target -----------------------------------------------------------------


def scope_tors(s: Session, target: Target) -> frozenset[uuid.UUID] | None:
    if target.tor is not None:
        return frozenset({resolve_ref(s, Switch, target.tor, "to_tor")})
    if target.module is not None:
        mid = resolve_ref(s, Module, target.module, "to_module")
        return frozenset(s.scalars(select(Host.tor_id).where(Host.module_id == mid).distinct()))
    if target.site is not None:
        sid = resolve_ref(s, Site, target.site, "to_site")
        return frozenset(s.scalars(select(Host.tor_id).where(Host.site_id == sid).distinct()))
    return None


def plan_move(
    rt: Any, s: Session, vm: Vm, target: Target, *, demand: Demand | None = None
) -> MigrationPlan:
    """Assess the host given, or let the scheduler pick one within the scope and assess it."""
    if sum(x is not None for x in (target.host, target.tor, target.module, target.site)) > 1:
        raise InvalidInput("give at most one of to, to_tor, to_module, to_site", field="to")
    if target.host is not None:
        host = s.get(Host, resolve_ref(s, Host, target.host, "to"))
        assert host is not None
        return assess(rt, s, vm, host, demand=demand)
    source = s.get(Host, vm.host_id) if vm.host_id else None
    if source is None:
        raise Conflict("the VM runs on no host", field="vm_id", code="invalid_state")
    tors = scope_tors(s, target)
    req = replace(
        request_for(rt, s, vm, source, demand=demand, strategy=target.strategy), tors=tors
    )
    avoid = set(req.avoid) | set(target.avoid)
    last: MigrationPlan | None = None
    for _ in range(PICK_TRIES):
        with rt.placement._lock:
            decision = rt.placement.scheduler().select(replace(req, avoid=frozenset(avoid)))
        if decision.host is None:
            break
        host = s.get(Host, decision.host.id)
        assert host is not None
        last = assess(rt, s, vm, host, demand=demand, chosen_by="scheduler")
        if last.feasible:
            return last
        avoid.add(host.id)
    if last is not None:
        return last
    return _nowhere(rt, s, vm, source, tors, decision.reasons(), demand)


def _nowhere(
    rt: Any,
    s: Session,
    vm: Vm,
    source: Host,
    tors: frozenset[uuid.UUID] | None,
    reasons: str,
    demand: Demand | None,
) -> MigrationPlan:
    """No host qualified: explain with a host of the scope (the network's reasons show)."""
    # A working host off the source's ToR shows the network's reasons best.
    stmt = (
        select(Host)
        .where(Host.id != source.id)
        .order_by(Host.tor_id == source.tor_id, Host.state != "active", Host.name)
        .limit(1)
    )
    if tors is not None:
        stmt = stmt.where(Host.tor_id.in_(list(tors)))
    sample = s.scalar(stmt)
    if sample is not None:
        plan = assess(rt, s, vm, sample, demand=demand, chosen_by="scheduler")
        plan.reasons.insert(0, f"no host in scope qualifies: {reasons}")
        plan.notes.append(f"reasons below are for {sample.name}, one host of the scope")
        plan.target_host = plan.target_host_id = plan.target_tor = None
        plan.feasible = False
        return plan
    src_tor = s.get(Switch, source.tor_id)
    return MigrationPlan(
        vm_id=str(vm.id),
        vm=vm.name,
        tenant_id=str(vm.tenant_id),
        state=vm.state,
        source_host=source.name,
        source_tor=src_tor.name if src_tor else "?",
        chosen_by="scheduler",
        reasons=[f"no host in scope: {reasons}"],
    )
