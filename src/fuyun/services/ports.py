"""Ports: a MAC and addresses on a network, optionally bound to a host (a VM's NIC).

Creating a port allocates its MAC (random under the configured OUI, retried on a
collision with the unique index), its addresses (next-free or named; growing the
network by its strategy when every subnet is full), claims the tenant's IP quota,
and — when bound to a host — claims the switch tables of the VLAN's span. All in
one transaction; a dry run does the same and rolls back, answering what it would
have done to every table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.errors import CapacityExhausted, Conflict, Forbidden, InvalidInput, NotFound
from fuyun.ipam.addresses import parse_address, to_address, unpack
from fuyun.ipam.macs import check_oui, normalize_mac, random_mac
from fuyun.services import address_plan as plan
from fuyun.services import addressing, l2fabric, qos_admission, quotas
from fuyun.services.audit import mutation
from fuyun.services.enforcement import affected_hosts, forget_guest, recompile
from fuyun.services.hostports import publish_host_ports
from fuyun.services.inventory import resolve_ref
from fuyun.services.l2fabric import TableChange
from fuyun.services.metrics import conflict_retried
from fuyun.services.networks import (
    Growth,
    Networking,
    add_segment,
    add_subnet,
    latest_segment,
    visible_network,
)
from fuyun.services.pagination import Page, paginate
from fuyun.services.policy import ensure_default_group, resolve_group
from fuyun.services.principal import Principal
from fuyun.services.qos_admission import holds_qos, settle
from fuyun.store.engine import Database
from fuyun.store.models import (
    Host,
    IpAllocation,
    Module,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    Segment,
    Subnet,
    Vrf,
)
from fuyun.store.types import utcnow

MAC_RETRIES = 16


@dataclass(frozen=True)
class PortRequest:
    network_id: uuid.UUID
    name: str = ""
    ip: str | None = None
    mac: str | None = None
    host: str | None = None
    vm_id: uuid.UUID | None = None
    security_groups: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PortView:
    """A port as plain data, so a dry run can answer after its rollback."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    network_id: uuid.UUID
    segment_id: uuid.UUID
    vlan: int
    name: str
    mac: str
    ips: list[str]
    host_id: uuid.UUID | None
    vm_id: uuid.UUID | None
    grew: str | None = None  # the growth step this port caused, if any
    l2: list[TableChange] = field(default_factory=list)


def create_port(
    ctx: Networking, principal: Principal, req: PortRequest, *, dry_run: bool = False
) -> PortView:
    principal.require_write()
    if (req.mac is not None or req.host is not None) and not principal.is_operator:
        raise Forbidden(
            "only operators set a MAC or bind a port to a host",
            field="mac" if req.mac is not None else "host",
        )
    with mutation(ctx.db, principal, "port.create", "port", dry_run=dry_run) as m:
        s = m.session
        network = visible_network(s, principal, req.network_id, lock=True)
        m.tenant_id = network.tenant_id
        host = None
        if req.host is not None:
            host = s.get(Host, resolve_ref(s, Host, req.host, "host"))
        groups = (
            None
            if req.security_groups is None
            else [
                resolve_group(s, network.tenant_id, g, "security_groups")
                for g in req.security_groups
            ]
        )
        view = open_port(
            s,
            ctx.settings,
            network,
            name=req.name,
            ip=req.ip,
            mac=req.mac,
            host=host,
            vm_id=req.vm_id,
            dry_run=dry_run,
            groups=groups,
        )
        if host is not None and qos_admission.holds_qos(s, network.tenant_id, host.id):
            qos_admission.settle(s, {(network.tenant_id, host.id)}, field="host")
        recompile(s, port_hosts(s, view.id))
        publish_host_ports(s, [view.host_id])
        m.object_id = str(view.id)
        m.detail = {
            "network": network.name,
            "mac": view.mac,
            "ips": view.ips,
            "grew": view.grew,
            "host": req.host,
        }
        return view


def open_port(
    s: Session,
    settings: Settings,
    network: Network,
    *,
    name: str = "",
    ip: str | None = None,
    mac: str | None = None,
    host: Host | None = None,
    vm_id: uuid.UUID | None = None,
    dry_run: bool = False,
    groups: list[SecurityGroup] | None = None,
) -> PortView:
    """Make a port inside the caller's transaction (the VM workflow uses this too).

    Lock order, the same for every writer so PostgreSQL never finds a cycle: the
    network row (callers lock it first; several networks in id order), then the
    subnet's free range, the VRF (growth only), the tenant's quota row, and the
    switches of the span by name.
    """
    if len(name) > 64:
        raise InvalidInput("name is longer than 64 characters", field="name")
    rows, segment, grew = _allocate_addresses(s, settings, network, ip, utcnow())
    quotas.claim(s, network.tenant_id, ips=len(rows))
    port = _insert_with_mac(s, settings, network, segment, name, mac, vm_id)
    for row in rows:
        row.port_id = port.id
    chosen = groups if groups is not None else [ensure_default_group(s, network.tenant_id)]
    s.add_all(PortSecurityGroup(port_id=port.id, group_id=g) for g in {g.id for g in chosen})
    allocated = [(unpack(r.address), r.family) for r in rows]
    l2: list[TableChange] = []
    if host is not None:
        module = s.get(Module, network.module_id)
        assert module is not None
        l2 = l2fabric.bind(s, segment, module, host, len(allocated), dry_run=dry_run)
        port.host_id = host.id
    network.generation += 1
    s.flush()
    return PortView(
        id=port.id,
        tenant_id=port.tenant_id,
        network_id=network.id,
        segment_id=segment.id,
        vlan=segment.vlan,
        name=port.name,
        mac=port.mac,
        ips=[str(to_address(a, f)) for a, f in allocated],
        host_id=port.host_id,
        vm_id=port.vm_id,
        grew=grew,
        l2=l2,
    )


def _insert_with_mac(
    s: Session,
    settings: Settings,
    network: Network,
    segment: Segment,
    name: str,
    mac: str | None,
    vm_id: uuid.UUID | None,
) -> Port:
    oui = check_oui(settings.mac_oui)
    for _ in range(MAC_RETRIES if mac is None else 1):
        candidate = normalize_mac(mac) if mac is not None else random_mac(oui)
        try:
            with s.begin_nested():
                port = Port(
                    tenant_id=network.tenant_id,
                    network_id=network.id,
                    segment_id=segment.id,
                    vm_id=vm_id,
                    name=name,
                    mac=candidate,
                )
                s.add(port)
                s.flush()
            return port
        except IntegrityError:
            if mac is not None:
                raise Conflict(
                    f"MAC {candidate} is in use", field="mac", code="mac_in_use"
                ) from None
            conflict_retried("mac")
    raise Conflict("could not find a free MAC; retry", field="mac")


def _allocate_addresses(
    s: Session, settings: Settings, network: Network, ip: str | None, now: datetime
) -> tuple[list[IpAllocation], Segment, str | None]:
    """Addresses for a new port: the named one, or next-free (dual stack), growing if full."""
    hold = settings.ip_quarantine_s
    subnets = list(
        s.scalars(
            select(Subnet)
            .join(Segment, Segment.id == Subnet.segment_id)
            .where(Subnet.network_id == network.id)
            .order_by(Segment.index, Subnet.created_at, Subnet.first)
        )
    )
    if ip is not None:
        address = parse_address(ip)
        value = int(address)
        for sub in subnets:
            if sub.family == address.version and unpack(sub.first) <= value <= unpack(sub.last):
                row = addressing.allocate_exact(s, sub, value, None, now=now, hold_s=hold)
                return [row], _segment(s, sub), None
        raise InvalidInput(f"{ip} is in none of the network's subnets", field="ip")
    families = sorted({sub.family for sub in subnets})
    grew: str | None = None
    got: tuple[IpAllocation, Subnet] | None = None
    for sub in subnets:
        if sub.family == families[0]:
            row = addressing.allocate_next(s, sub, None, now=now, hold_s=hold)
            if row is not None:
                got = (row, sub)
                break
    if got is None:
        got, grew = _grow(s, settings, network, subnets, families[0], now)
    rows = [got[0]]
    # Dual stack: one address of each other family from the same segment, if it has one.
    for other in families[1:]:
        for cand in subnets:
            if cand.family == other and cand.segment_id == got[1].segment_id:
                extra = addressing.allocate_next(s, cand, None, now=now, hold_s=hold)
                if extra is not None:
                    rows.append(extra)
                    break
    return rows, _segment(s, got[1]), grew


def _segment(s: Session, sub: Subnet) -> Segment:
    segment = s.get(Segment, sub.segment_id)
    assert segment is not None
    return segment


def _grow(
    s: Session,
    settings: Settings,
    network: Network,
    tried: list[Subnet],
    family: int,
    now: datetime,
) -> tuple[tuple[IpAllocation, Subnet], str | None]:
    """Every subnet of the family is full: grow by the network's strategy, or refuse.

    Growers queue on the network's row; whoever comes second first looks again, so a
    burst of requests against a full subnet adds one range, not one per request.
    """
    hold = settings.ip_quarantine_s
    s.scalar(select(Network.id).where(Network.id == network.id).with_for_update(key_share=True))
    seen = {sub.id for sub in tried}
    for sub in s.scalars(
        select(Subnet)
        .where(Subnet.network_id == network.id, Subnet.family == family, Subnet.id.not_in(seen))
        .order_by(Subnet.created_at)
    ):
        row = addressing.allocate_next(s, sub, None, now=now, hold_s=hold)
        if row is not None:
            return (row, sub), None
    growth = Growth(network.growth)
    if growth is Growth.REFUSE:
        raise CapacityExhausted(
            f"network '{network.name}': every subnet is full and its growth strategy is 'refuse'",
            field="network_id",
            code="subnet_exhausted",
        )
    primary = next((x for x in tried if x.family == family and x.primary), tried[0])
    length = network.growth_prefix_len or primary.prefix_len
    vrf = s.get(Vrf, network.vrf_id)
    assert vrf is not None
    net, _ = plan.carve(s, vrf, family, length)
    if growth is Growth.SECONDARY:
        segment = latest_segment(s, network)
        sub = add_subnet(s, network, segment, net, primary=False)
        grew = f"secondary {net} on VLAN {segment.vlan}"
    else:
        module = s.get(Module, network.module_id)
        assert module is not None
        segment = add_segment(s, settings, network, module)
        sub = add_subnet(s, network, segment, net, primary=True)
        grew = f"new VLAN {segment.vlan} with {net}"
    row = addressing.allocate_next(s, sub, None, now=now, hold_s=hold)
    assert row is not None
    return (row, sub), grew


def port_hosts(s: Session, port_id: uuid.UUID) -> set[uuid.UUID]:
    """Hosts whose policy depends on this port: its own and those that refer to its groups."""
    port = s.get(Port, port_id)
    if port is None or port.host_id is None:
        # An unbound port runs nowhere: no device enforces it, and no set counts it.
        return set()
    groups = set(
        s.scalars(select(PortSecurityGroup.group_id).where(PortSecurityGroup.port_id == port_id))
    )
    bound = [h for h in (port.host_id, port.peer_host_id) if h is not None]
    return affected_hosts(s, membership_of=groups, hosts=bound)


def bind_port_host(
    s: Session, port: Port, host_id: uuid.UUID | None, peer_host_id: uuid.UUID | None = None
) -> None:
    """Set where a port runs (and, during a move, the other host that also holds it).

    The one place a port's host binding changes after it is made, so that whatever
    derives per-host state from bindings (policy, port maps, telemetry) hooks here.
    The caller recompiles the hosts concerned: a move keeps the port's addresses and
    groups, so only the hosts it leaves and joins change.
    """
    before = {port.host_id, port.peer_host_id}
    port.host_id, port.peer_host_id = host_id, peer_host_id
    s.flush()
    touched = {h for h in before | {host_id, peer_host_id} if h is not None}
    publish_host_ports(s, touched)
    # The port's guarantee goes with its primary binding: given back where it left,
    # admitted (or refused, 409) where it arrives.
    primary = {h for h in (*before, host_id) if h is not None}
    pairs = {
        (port.tenant_id, h)
        for h in primary
        if port.qos_policy_id is not None or holds_qos(s, port.tenant_id, h)
    }
    if pairs:
        settle(s, pairs, field="host")
    # Its shaping, though, is in force on the peer host too (the destination of a move
    # shapes the port before the VM lands; the source until it is cleaned up).
    peers = touched - primary
    if peers and (
        port.qos_policy_id is not None or any(holds_qos(s, port.tenant_id, h) for h in peers)
    ):
        qos_admission.compile_hosts(s, peers)


def close_port(
    s: Session,
    settings: Settings,
    port: Port,
    *,
    freed: list[tuple[uuid.UUID, int, int, int]] | None = None,
) -> set[uuid.UUID]:
    """Release a port inside the caller's transaction: addresses to quarantine, span shrinks.

    Answers the hosts whose policy must be recompiled now that the port is gone; what
    the switch tables gave back is appended to ``freed`` (switch, MAC, ARP, VLAN
    deltas), for the scheduler's snapshot.
    """
    affected = port_hosts(s, port.id)
    s.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id))
    forget_guest(s, port.id)
    network = s.scalar(
        select(Network).where(Network.id == port.network_id).with_for_update(key_share=True)
    )
    assert network is not None
    allocations = list(
        s.scalars(select(IpAllocation).where(IpAllocation.port_id == port.id).with_for_update())
    )
    if port.host_id is not None:
        segment = s.get(Segment, port.segment_id)
        module = s.get(Module, network.module_id)
        host = s.get(Host, port.host_id)
        assert segment is not None and module is not None and host is not None
        l2fabric.unbind(s, segment, module, host, len(allocations), freed=freed)
    now = utcnow()
    for allocation in allocations:
        addressing.release(s, allocation, now=now, hold_s=settings.ip_quarantine_s)
    quotas.release(s, port.tenant_id, ips=len(allocations))
    network.generation += 1
    qos_pair = (port.tenant_id, port.host_id) if port.host_id is not None else None
    shaped = port.qos_policy_id is not None
    s.delete(port)
    s.flush()
    if qos_pair is not None and (shaped or qos_admission.holds_qos(s, *qos_pair)):
        qos_admission.settle(s, {qos_pair})
    return affected


def delete_port(ctx: Networking, principal: Principal, port_id: uuid.UUID) -> None:
    principal.require_write()
    with mutation(ctx.db, principal, "port.delete", "port", object_id=port_id) as m:
        port = _visible_port(m.session, principal, port_id)
        m.tenant_id = port.tenant_id
        if port.vm_id is not None:
            raise Conflict(
                "the port belongs to a VM; detach it from the VM instead",
                field="port_id",
                code="port_in_use",
            )
        m.detail = {"mac": port.mac}
        host_id = port.host_id
        recompile(m.session, close_port(m.session, ctx.settings, port))
        publish_host_ports(m.session, [host_id])


def _visible_port(s: Session, principal: Principal, port_id: uuid.UUID) -> Port:
    port = s.get(Port, port_id)
    if port is None or not principal.may_see_tenant(port.tenant_id):
        raise NotFound("no such port", field="port_id")
    return port


def port_views(s: Session, ports: list[Port]) -> list[PortView]:
    if not ports:
        return []
    ids = [p.id for p in ports]
    ips: dict[uuid.UUID, list[str]] = {}
    for port_id, address, family in s.execute(
        select(IpAllocation.port_id, IpAllocation.address, IpAllocation.family)
        .where(IpAllocation.port_id.in_(ids))
        .order_by(IpAllocation.family)
    ):
        ips.setdefault(port_id, []).append(str(to_address(unpack(address), family)))
    vlans = dict(
        s.execute(
            select(Segment.id, Segment.vlan).where(Segment.id.in_({p.segment_id for p in ports}))
        ).all()
    )
    return [
        PortView(
            id=p.id,
            tenant_id=p.tenant_id,
            network_id=p.network_id,
            segment_id=p.segment_id,
            vlan=vlans[p.segment_id],
            name=p.name,
            mac=p.mac,
            ips=ips.get(p.id, []),
            host_id=p.host_id,
            vm_id=p.vm_id,
        )
        for p in ports
    ]


def get_port(db: Database, principal: Principal, port_id: uuid.UUID) -> PortView:
    with db.read_session() as s:
        return port_views(s, [_visible_port(s, principal, port_id)])[0]


def list_ports(
    db: Database,
    principal: Principal,
    *,
    network_id: uuid.UUID | None = None,
    vm_id: uuid.UUID | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[PortView]:
    stmt = principal.scope(select(Port), Port.tenant_id)
    if network_id is not None:
        stmt = stmt.where(Port.network_id == network_id)
    if vm_id is not None:
        stmt = stmt.where(Port.vm_id == vm_id)
    with db.read_session() as s:
        page = paginate(
            s, stmt, sort=Port.created_at, id_column=Port.id, limit=limit, cursor=cursor
        )
        return Page(items=port_views(s, page.items), next_cursor=page.next_cursor)
