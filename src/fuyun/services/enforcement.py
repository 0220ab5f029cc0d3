"""Compiling security intent into every affected device's desired state, incrementally.

A change names what it touched (groups, ports, hosts); :func:`affected_hosts` widens
that to the hosts whose policy depends on it — the members of a changed group. A
change of a group's membership recompiles only the hosts of the ports that changed:
devices refer to a group's members by set name, and the set itself is updated and
its referring devices bumped by :mod:`fuyun.services.address_sets`.
Only those devices are recompiled, in the transaction of the change. A device's
generation moves only when its compiled content changes, so re-applying an
unchanged intent changes nothing downstream.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, load_only

from fuyun.domain.enums import EnforcementPoint
from fuyun.domain.errors import FuyunError
from fuyun.ipam.addresses import to_address, unpack
from fuyun.policy.compile import GlobalRule, GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import (
    Action,
    AddressSet,
    DevicePolicy,
    Direction,
    Endpoint,
    device_name,
    from_json,
    to_json,
)
from fuyun.policy.splice import kept_ports, splice
from fuyun.services import address_sets
from fuyun.services.leak_paths import tor_routes
from fuyun.services.tordevice import (
    Cabled,
    gateways,
    stored_documents,
    tor_members,
    trunks,
)
from fuyun.store.models import (
    DeviceState,
    Host,
    IpAllocation,
    Module,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroupRule,
    Segment,
    Subnet,
    Switch,
)
from fuyun.store.models import GlobalRule as GlobalRuleRow
from fuyun.store.types import EncodedJson, utcnow

# Enum lookup by value is a slow call; a change reads thousands of rule rows.
_DIRECTION = {d.value: d for d in Direction}


@dataclass(frozen=True)
class Compiled:
    devices: int
    changed: int


def affected_hosts(
    s: Session,
    *,
    groups: Iterable[uuid.UUID] = (),
    membership_of: Iterable[uuid.UUID] = (),
    hosts: Iterable[uuid.UUID] = (),
) -> set[uuid.UUID]:
    """Hosts to recompile: members of ``groups``, plus ``hosts`` themselves.

    ``membership_of`` (groups whose members change) widens nothing any more: the
    hosts whose rules refer to those groups hold the set's name, not its members, and
    :func:`fuyun.services.address_sets.sync_hosts` (run by :func:`recompile` for the
    changed ports' ``hosts``) updates the set and bumps them. Kept so callers still
    say what changed.
    """
    del membership_of
    out = set(hosts)
    wanted = set(groups)
    if wanted:
        for column in (Port.host_id, Port.peer_host_id):
            out |= set(
                s.scalars(
                    select(column)
                    .join(PortSecurityGroup, PortSecurityGroup.port_id == Port.id)
                    .where(PortSecurityGroup.group_id.in_(list(wanted)), column.is_not(None))
                )
            )
    out.discard(None)  # type: ignore[arg-type]
    return out


def hosts_of_networks(s: Session, network_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Hosts with a port on these networks (moving ports count on both hosts).

    What a network-wide fact reaches: its DHCP service (every port's binding) and its
    subnets' gateways (SVIs of the ToRs that route them).
    """
    wanted = list(network_ids)
    if not wanted:
        return set()
    out: set[uuid.UUID] = set()
    for column in (Port.host_id, Port.peer_host_id):
        out |= set(
            s.scalars(
                select(column).where(Port.network_id.in_(wanted), column.is_not(None)).distinct()
            )
        )
    return out


def all_hosts_with_ports(s: Session) -> set[uuid.UUID]:
    bound = set(s.scalars(select(Port.host_id).where(Port.host_id.is_not(None)).distinct()))
    peers = s.scalars(select(Port.peer_host_id).where(Port.peer_host_id.is_not(None)).distinct())
    return bound | set(peers)


def gather(
    s: Session, host_ids: set[uuid.UUID]
) -> tuple[list[Endpoint], PolicySnapshot, dict[uuid.UUID, Host]]:
    """Endpoints on the hosts and the intent their policies need, in a handful of queries."""
    if not host_ids:
        return [], PolicySnapshot(), {}
    hosts = {h.id: h for h in s.scalars(select(Host).where(Host.id.in_(list(host_ids))))}
    # Columns, not entities: a change touches hundreds of ports, and building ORM
    # objects for them costs more than the whole compile.
    rows = s.execute(
        select(
            Port.id,
            Port.tenant_id,
            Port.network_id,
            Port.segment_id,
            Port.mac,
            Port.host_id,
            Port.peer_host_id,
            Segment.vlan,
            Network.vrf_id,
        )
        .join(Segment, Segment.id == Port.segment_id)
        .join(Network, Network.id == Port.network_id)
        .where(or_(Port.host_id.in_(list(host_ids)), Port.peer_host_id.in_(list(host_ids))))
    ).all()
    port_ids = [p.id for p in rows]
    groups_of: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for port_id, group_id in s.execute(
        select(PortSecurityGroup.port_id, PortSecurityGroup.group_id).where(
            PortSecurityGroup.port_id.in_(port_ids)
        )
    ):
        groups_of[port_id].add(group_id)
    ips = _addresses(s, port_ids)
    dhcp = _dhcp_servers(s, {p.network_id for p in rows})
    # A port in the middle of a move is bound to two hosts; each enforces it.
    endpoints = [
        Endpoint(
            p.id,
            p.tenant_id,
            p.vrf_id,
            p.network_id,
            p.segment_id,
            p.vlan,
            p.mac,
            tuple(ips.get(p.id, ())),
            frozenset(groups_of.get(p.id, ())),
            host=hosts[bound].name if bound in hosts else None,
            device=device_name(p.id),
            dhcp=dhcp.get(p.network_id, ()),
        )
        for p in rows
        for bound in _bindings(p.host_id, p.peer_host_id, hosts)
    ]
    return endpoints, snapshot_for(s, {g for e in endpoints for g in e.groups}), hosts


def _bindings(
    host_id: uuid.UUID | None, peer_host_id: uuid.UUID | None, hosts: dict[uuid.UUID, Host]
) -> list[uuid.UUID | None]:
    """The hosts of ``hosts`` a port is bound to: its own, and its peer while it moves."""
    found = [h for h in (host_id, peer_host_id) if h is not None and h in hosts]
    return found or [host_id]


def _dhcp_servers(s: Session, network_ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, ...]]:
    """Per network that serves DHCP, the addresses its service answers on: the gateways."""
    out: dict[uuid.UUID, list[str]] = defaultdict(list)
    if not network_ids:
        return {}
    for network_id, gateway, family in s.execute(
        select(Subnet.network_id, Subnet.gateway, Subnet.family)
        .join(Network, Network.id == Subnet.network_id)
        .where(
            Subnet.network_id.in_(list(network_ids)),
            Subnet.gateway.is_not(None),
            Network.dhcp.is_(True),
        )
        .order_by(Subnet.family, Subnet.gateway)
    ):
        out[network_id].append(str(to_address(unpack(gateway), family)))
    return {k: tuple(v) for k, v in out.items()}


def _addresses(s: Session, port_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    out: dict[uuid.UUID, list[str]] = defaultdict(list)
    for port_id, address, family in s.execute(
        select(IpAllocation.port_id, IpAllocation.address, IpAllocation.family)
        .where(IpAllocation.port_id.in_(port_ids), IpAllocation.state == "allocated")
        .order_by(IpAllocation.family, IpAllocation.address)
    ):
        out[port_id].append(str(to_address(unpack(address), family)))
    return out


def snapshot_for(s: Session, groups: set[uuid.UUID]) -> PolicySnapshot:
    snap = PolicySnapshot()
    remote: set[uuid.UUID] = set()
    if groups:
        for r in s.execute(
            select(
                SecurityGroupRule.id,
                SecurityGroupRule.group_id,
                SecurityGroupRule.direction,
                SecurityGroupRule.ethertype,
                SecurityGroupRule.protocol,
                SecurityGroupRule.port_min,
                SecurityGroupRule.port_max,
                SecurityGroupRule.remote_cidr,
                SecurityGroupRule.remote_group_id,
            ).where(SecurityGroupRule.group_id.in_(list(groups)))
        ):
            snap.rules.setdefault(r.group_id, []).append(
                GroupRule(
                    r.id,
                    r.group_id,
                    _DIRECTION[r.direction],
                    r.ethertype,
                    r.protocol,
                    r.port_min,
                    r.port_max,
                    r.remote_cidr,
                    r.remote_group_id,
                )
            )
            if r.remote_group_id is not None:
                remote.add(r.remote_group_id)
    # Sets by name only: their members are stored once (fuyun.services.address_sets)
    # and hydrated by whoever renders or analyses a device, never compiled in.
    for g in groups | remote:
        snap.members[g] = {4: set(), 6: set()}
    snap.global_rules = [
        GlobalRule(
            g.id,
            Action(g.action),
            _DIRECTION[g.direction],
            g.ethertype,
            g.protocol,
            g.port_min,
            g.port_max,
            g.remote_cidr,
            g.priority,
        )
        for g in s.scalars(select(GlobalRuleRow))
    ]
    return snap


def with_tor_peers(s: Session, host_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """``host_ids`` plus, where a ToR enforces, every host cabled to that ToR.

    A ToR's configuration covers all its hosts' ports and one trunk per host: compiled
    in full, it needs them all (:func:`recompile` patches it from the changed hosts).
    """
    members = tor_members(s, host_ids)
    return host_ids | {h.id for hosts in members.values() for h in hosts}


@dataclass(frozen=True)
class _Device:
    dtype: str
    flavor: str
    # The whole device; for a patched ToR, its device-wide parts and the changed hosts'
    # ports only, with the spliced document in ``ir``.
    policy: DevicePolicy
    ir: dict[str, object] | None = None


def device_policies(s: Session, host_ids: set[uuid.UUID]) -> list[tuple[str, str, DevicePolicy]]:
    """(device type, flavor, policy) for every device that enforces for these hosts'
    ports, each compiled in full from the store."""
    return [(d.dtype, d.flavor, d.policy) for d in _devices(s, host_ids, patch=False)]


def _patchable(
    s: Session, members: dict[uuid.UUID, list[Cabled]], tors: dict[uuid.UUID, Switch]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Per ToR whose stored IR can be patched, that IR: all its hosts enforce at the ToR
    (one enforcement point) and the stored document is of that point."""
    point = dict(
        s.execute(
            select(Module.id, Module.enforcement_point).where(
                Module.id.in_({h.module_id for hosts in members.values() for h in hosts})
            )
        ).all()
    )
    single = {}
    for tor_id, hosts in members.items():
        eps = {point[h.module_id] for h in hosts}
        if len(eps) == 1:
            single[tor_id] = eps.pop()
    docs = stored_documents(s, {tors[t].name: members[t] for t in single})
    return {t: docs[(tors[t].name, ep)] for t, ep in single.items() if (tors[t].name, ep) in docs}


def _devices(s: Session, host_ids: set[uuid.UUID], *, patch: bool) -> list[_Device]:
    """Every device of these hosts, compiled. With ``patch``, a ToR whose stored IR can
    be patched compiles only the ports of its hosts in ``host_ids`` (see
    :mod:`fuyun.services.tordevice`); every other ToR compiles all its hosts' ports."""
    members = tor_members(s, host_ids)
    tors = {t.id: t for t in s.scalars(select(Switch).where(Switch.id.in_(list(members))))}
    stored = _patchable(s, members, tors) if patch and members else {}
    full = {h.id for t, hosts in members.items() if t not in stored for h in hosts}
    endpoints, snap, hosts = gather(s, host_ids | full)
    modules = {
        m.id: m
        for m in s.scalars(
            select(Module).where(Module.id.in_({h.module_id for h in hosts.values()}))
        )
    }
    by_device: dict[tuple[str, str, str, str], list[Endpoint]] = defaultdict(list)
    host_by_name = {h.name: h for h in hosts.values()}
    for h in hosts.values():  # every device gets a state, even with no port left
        ep = modules[h.module_id].enforcement_point
        if ep == EnforcementPoint.VSWITCH.value:
            by_device[("host", h.name, ep, h.vswitch)]
        elif ep != EnforcementPoint.VM_IPTABLES.value:
            tor = tors[h.tor_id]
            by_device[("switch", tor.name, ep, tor.platform if ep != "vepa" else "vepa")]
    for e in endpoints:
        h = host_by_name[e.host] if e.host else None
        if h is None:
            continue
        ep = modules[h.module_id].enforcement_point
        if ep == EnforcementPoint.VSWITCH.value:
            key = ("host", h.name, ep, h.vswitch)
        elif ep == EnforcementPoint.VM_IPTABLES.value:
            key = ("guest", str(e.port_id), ep, "iptables")
        else:  # tor-acl, vrf, vepa: the ToR (or its edge) enforces
            tor = tors[h.tor_id]
            key = ("switch", tor.name, ep, tor.platform if ep != "vepa" else "vepa")
        if key[0] == "guest" and by_device.get(key):
            continue  # the guest enforces its own rules once, wherever it runs
        by_device[key].append(e)
    tor_of = {t.name: t for t in tors.values()}
    # A patched ToR keeps the stored entries of its hosts that did not change.
    kept = {
        tor_id: kept_ports(doc, {h.name for h in hosts.values() if h.tor_id == tor_id}) or []
        for tor_id, doc in stored.items()
    }
    # What the ToR's own parts are made of: (host, VLAN, segment) of every port it carries.
    carried: dict[str, list[tuple[str | None, int, uuid.UUID]]] = defaultdict(list)
    for (dtype, name, _, _), eps in by_device.items():
        if dtype == "switch":
            carried[name] += [(e.host, e.vlan, e.segment_id) for e in eps]
            carried[name] += [
                (p["host"], p["vlan"], uuid.UUID(p["segment"]))
                for p in kept.get(tor_of[name].id, ())
            ]
    svis = gateways(s, {seg for ports in carried.values() for _, _, seg in ports})
    leaked = tor_routes(s, {g.vrf_id for gws in svis.values() for g in gws})
    out = []
    for (dtype, name, ep, flavor), eps in sorted(by_device.items()):
        if dtype != "switch":
            out.append(_Device(dtype, flavor, compile_device(snap, name, ep, eps)))
            continue
        tor = tor_of[name]
        vlans: dict[str, set[int]] = defaultdict(set)
        for host, vlan, _ in carried[name]:
            if host:
                vlans[host].add(vlan)
        policy = compile_device(
            snap,
            name,
            ep,
            eps,
            vlans={vlan for _, vlan, _ in carried[name]},
            gateways=[g for seg in {x for _, _, x in carried[name]} for g in svis.get(seg, ())],
            trunks=trunks(tor, members[tor.id], vlans),
        )
        svi = [g for seg in {x for _, _, x in carried[name]} for g in svis.get(seg, ())]
        routes = sorted(r for vrf in {g.vrf_id for g in svi} for r in leaked.get(vrf, ()))
        if routes:  # approved route leaks of the VRFs routed here
            policy = replace(policy, routes=tuple(routes))
        if tor.id not in stored:
            out.append(_Device(dtype, flavor, policy))
            continue
        doc = splice(stored[tor.id], kept[tor.id], policy)
        if doc is None:  # the stored document lacks what its entries use: compile in full
            whole = _devices(s, {h.id for h in members[tor.id]}, patch=False)
            out += [d for d in whole if (d.dtype, d.policy.device) == (dtype, name)]
            continue
        # The sets the whole document refers to (by name), for the set references.
        names = tuple(AddressSet(x["n"], x["f"], frozenset()) for x in doc["sets"])  # type: ignore[union-attr]
        out.append(_Device(dtype, flavor, replace(policy, sets=names), doc))
    return out


def forget_guest(s: Session, port_id: uuid.UUID) -> None:
    """Drop the ``vm-iptables`` device of a port that is going away.

    A guest device exists per port, so no recompile of the remaining hosts removes
    it: without this its stale rules (for an address IPAM will hand out again)
    would stay in every verify and every agent's view.
    """
    s.execute(
        delete(DeviceState).where(
            DeviceState.device_type == "guest", DeviceState.device_name == str(port_id)
        )
    )


def render(policy: DevicePolicy, flavor: str) -> str:
    """Rendered text when a renderer exists for (enforcement point, flavor); else empty."""
    try:
        from fuyun.policy.render import RENDERERS
    except ImportError:  # pragma: no cover - renderers ship with the package
        return ""
    fn = RENDERERS.get((policy.enforcement_point, flavor))
    if fn is None:
        return ""
    try:
        return fn(policy)
    except FuyunError as exc:
        # One device that cannot be rendered must not fail an unrelated change: the
        # device keeps the error as its configuration and shows as not converged.
        return f"# fuyun could not render this device: {exc.message}\n"


def rendered_text(rendered: str, ir: dict[str, object] | None, flavor: str) -> str:
    """A device's configuration text: as stored, or printed now from its IR (deferred)."""
    if rendered or not ir:
        return rendered
    return render(from_json(ir), flavor)


def _store(
    row: DeviceState, dtype: str, flavor: str, policy: DevicePolicy, ir: dict[str, Any]
) -> bool:
    """Write a device's compiled document unless its digest is unchanged (then False).

    The document is built in one fixed key order, so the text needs no key sort; the
    same text is stored (a ToR's is hundreds of kilobytes: encoded once).
    """
    text = json.dumps(ir, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    if row.digest == digest:
        return False
    row.ir, row.digest, row.flavor = EncodedJson(ir, text), digest, flavor
    # A ToR's text covers every host under it and takes far longer to print than to
    # compile: it is rendered when it is read (reconciler, API), off the request path.
    # So is a device that refers to address sets: its text holds their members, which
    # change without a recompile (address_sets.device_text renders it).
    deferred = dtype == "switch" or bool(policy.sets)
    row.rendered = "" if deferred else render(policy, flavor)
    row.desired_generation = (row.desired_generation or 0) + 1
    row.updated_at = utcnow()
    return True


def rehome(s: Session, module_id: uuid.UUID, old: str) -> Compiled:
    """A module's enforcement point moved from ``old``: enforce at the new one.

    The old point's devices of the module are emptied (a policy with no port, a new
    generation), so their agents withdraw what they enforced; ``vm-iptables`` guest
    devices are dropped instead, as for a port that is gone. Then every host of the
    module is compiled for the new point, in the same transaction.
    """
    hosts = {h.id: h for h in s.scalars(select(Host).where(Host.module_id == module_id))}
    if not hosts:
        return Compiled(0, 0)
    if old == EnforcementPoint.VM_IPTABLES.value:
        for port_id in s.scalars(select(Port.id).where(Port.host_id.in_(list(hosts)))):
            forget_guest(s, port_id)
        return recompile(s, set(hosts))
    if old == EnforcementPoint.VSWITCH.value:
        dtype, names = "host", [h.name for h in hosts.values()]
    else:
        dtype = "switch"
        tor_ids = {h.tor_id for h in hosts.values()}
        names = list(s.scalars(select(Switch.name).where(Switch.id.in_(list(tor_ids)))))
    emptied: list[tuple[uuid.UUID, DevicePolicy]] = []
    for row in s.scalars(
        select(DeviceState).where(
            DeviceState.device_type == dtype,
            DeviceState.enforcement_point == old,
            DeviceState.device_name.in_(names),
        )
    ):
        policy = DevicePolicy(row.device_name, old, ())
        if _store(row, dtype, row.flavor, policy, to_json(policy)):
            emptied.append((row.id, policy))
    s.flush()
    address_sets.store_references(s, emptied)
    compiled = recompile(s, set(hosts))
    return Compiled(compiled.devices + len(emptied), compiled.changed + len(emptied))


def recompile(s: Session, host_ids: set[uuid.UUID]) -> Compiled:
    """Recompile the devices of these hosts and store what changed (generation + 1).

    A ToR above these hosts is patched: their ports compiled afresh, every other host's
    entries kept from its stored IR (see :mod:`fuyun.services.tordevice`).
    """
    if not host_ids:
        return Compiled(0, 0)
    changed = 0
    stored: list[tuple[DeviceState, DevicePolicy]] = []
    compiled = _devices(s, host_ids, patch=True)
    # Without the documents themselves: the digest decides, and a device's IR and text
    # (up to megabytes for a ToR) are only ever overwritten here, never read.
    existing = {
        (d.device_type, d.device_name, d.enforcement_point): d
        for d in s.scalars(
            select(DeviceState)
            .options(
                load_only(
                    DeviceState.device_type,
                    DeviceState.device_name,
                    DeviceState.enforcement_point,
                    DeviceState.digest,
                    DeviceState.desired_generation,
                )
            )
            .where(DeviceState.device_name.in_([d.policy.device for d in compiled]))
        )
    }
    for device in compiled:
        dtype, flavor, policy = device.dtype, device.flavor, device.policy
        row = existing.get((dtype, policy.device, policy.enforcement_point))
        new = row is None
        if row is None:
            row = DeviceState(
                device_type=dtype,
                device_name=policy.device,
                enforcement_point=policy.enforcement_point,
                flavor=flavor,
                desired_generation=0,
                applied_generation=0,
            )
        ir = device.ir if device.ir is not None else to_json(policy)
        if not _store(row, dtype, flavor, policy, ir):
            continue
        if new:
            s.add(row)
        stored.append((row, policy))
        changed += 1
    s.flush()
    address_sets.after_recompile(s, host_ids, [(row.id, policy) for row, policy in stored])
    return Compiled(len(compiled), changed)
