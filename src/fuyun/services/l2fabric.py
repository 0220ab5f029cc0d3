"""Claiming switch tables when ports join or leave a VLAN (see ``fuyun.ipam.l2``).

The pure model says what each switch's MAC, ARP and VLAN tables gain or lose; this
module claims it with one conditional ``UPDATE`` per switch, so concurrent binds
can fill a table but never overflow it. A refusal names the switch, the table and
the numbers. A dry run reads the same numbers and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.enums import FabricKind, SwitchRole
from fuyun.domain.errors import CapacityExhausted, Conflict
from fuyun.ipam.l2 import Change, SegmentView, TableDelta, port_joins, port_leaves
from fuyun.services.address_plan import ensure_vlan_pool
from fuyun.store.models import (
    Host,
    Module,
    Segment,
    SpanMember,
    Switch,
    VlanAllocation,
    VlanPool,
)

_COLUMNS = {
    "mac": ("used_mac", "mac_capacity", "MAC"),
    "arp": ("used_arp", "arp_capacity", "ARP"),
    "vlans": ("used_vlans", "vlan_capacity", "VLAN"),
}


@dataclass(frozen=True)
class TableChange:
    switch: str
    table: str
    used: int
    after: int
    capacity: int

    @property
    def fits(self) -> bool:
        return self.after <= self.capacity


def segment_view(session: Session, segment: Segment, module: Module) -> SegmentView:
    rows = session.execute(
        select(SpanMember.switch_id, SpanMember.ports).where(SpanMember.segment_id == segment.id)
    )
    aggs = tuple(
        session.scalars(
            select(Switch.id)
            .where(Switch.module_id == module.id, Switch.role == SwitchRole.AGGREGATION.value)
            .order_by(Switch.name)
        )
    )
    return SegmentView(
        vlan=segment.vlan,
        switched=module.fabric_kind == FabricKind.SWITCHED_CLOS.value,
        aggregation=aggs,
        tor_ports={sw: n for sw, n in rows},
    )


def bind(
    session: Session,
    segment: Segment,
    module: Module,
    host: Host,
    ips: int,
    *,
    dry_run: bool = False,
    extended: bool = False,
    settings: Settings | None = None,
    use: list[tuple[uuid.UUID, int, int, int]] | None = None,
) -> list[TableChange]:
    """A port of ``segment`` now lives on ``host``: claim the tables, grow the span.

    What each switch's tables took is appended to ``use`` (switch, MAC, ARP, VLAN
    deltas), for the scheduler's snapshot.

    ``extended``: the caller has checked that an L2 extension carries the VLAN to
    the host's module (a move keeping its IP); the host's ToR joins the span like
    any other, the gateway stays in the network's own module, and the VLAN is
    reserved in that module's pool (made from ``settings`` if the module has none
    yet) so no network of its own is ever given the same tag while it is carried
    there.
    """
    # One binder per segment at a time keeps the span and counts consistent.
    session.scalar(
        select(Segment.id).where(Segment.id == segment.id).with_for_update(key_share=True)
    )
    if host.module_id != module.id and not extended:
        raise Conflict(
            "the host is in another module than the network; extending a VLAN "
            "across modules needs an L2 interconnect",
            field="host",
            code="l2_unreachable",
        )
    tor = session.get(Switch, host.tor_id)
    assert tor is not None
    view = segment_view(session, segment, module)
    change = port_joins(view, tor.id, ips, tor.name)
    report = _claim(session, change, dry_run=dry_run)
    if not dry_run:
        if use is not None:
            use += [(sw, d.mac, d.arp, d.vlans) for sw, d in change.deltas.items()]
        if host.module_id != module.id:
            assert settings is not None, "an extension reserves its VLAN: pass settings"
            reserve_extended_vlan(session, settings, segment, host.module_id)
        member = session.get(SpanMember, (segment.id, tor.id))
        if member is None:
            session.add(SpanMember(segment_id=segment.id, switch_id=tor.id, ports=1))
        else:
            member.ports += 1
        session.flush()
    return report


def unbind(
    session: Session,
    segment: Segment,
    module: Module,
    host: Host,
    ips: int,
    *,
    freed: list[tuple[uuid.UUID, int, int, int]] | None = None,
) -> Change | None:
    """A port of ``segment`` leaves ``host``: give its table entries back, shrink the span.

    Answers what each switch gave back (None if the port was never bound there), and
    appends it to ``freed`` as (switch, MAC, ARP, VLAN) deltas, for the scheduler's
    snapshot.
    """
    session.scalar(
        select(Segment.id).where(Segment.id == segment.id).with_for_update(key_share=True)
    )
    view = segment_view(session, segment, module)
    if view.tor_ports.get(host.tor_id, 0) <= 0:
        return None  # never bound (or already unbound): nothing to give back
    change = port_leaves(view, host.tor_id, ips)
    _claim(session, change, dry_run=False)
    if freed is not None:
        freed += [(sw, d.mac, d.arp, d.vlans) for sw, d in change.deltas.items()]
    member = session.get(SpanMember, (segment.id, host.tor_id))
    assert member is not None
    if member.ports <= 1:
        session.execute(
            delete(SpanMember).where(
                SpanMember.segment_id == segment.id, SpanMember.switch_id == host.tor_id
            )
        )
    else:
        member.ports -= 1
    session.flush()
    if host.module_id != module.id:
        release_extended_vlan(session, segment, host.module_id)
    return change


def reserve_extended_vlan(
    session: Session, settings: Settings, segment: Segment, module_id: uuid.UUID
) -> None:
    """Hold ``segment``'s VLAN in the pool of a module it is extended into.

    A tag outside the pool's range (or reserved there) cannot be handed out by it, so
    nothing is held. Held by another segment: the extension would merge two
    networks, refused (the plan refuses it earlier; this settles a race).
    """
    module = session.get(Module, module_id)
    assert module is not None
    pool = ensure_vlan_pool(session, settings, module)
    vlan = segment.vlan
    if not pool.vlan_min <= vlan <= pool.vlan_max or vlan in pool.reserved:
        return
    holder = session.scalar(
        select(VlanAllocation.segment_id).where(
            VlanAllocation.pool_id == pool.id, VlanAllocation.vlan == vlan
        )
    )
    if holder == segment.id:
        return
    if holder is None:
        try:
            with session.begin_nested():
                session.add(VlanAllocation(pool_id=pool.id, vlan=vlan, segment_id=segment.id))
                session.flush()
            return
        except IntegrityError:
            pass  # taken meanwhile by a network of that module
    raise Conflict(
        f"VLAN {vlan} is in use in module {module.name}; extending it there would merge "
        "two networks",
        field="host",
        code="l2_unreachable",
    )


def release_extended_vlan(session: Session, segment: Segment, module_id: uuid.UUID) -> None:
    """Give the module's pool its tag back once no ToR of that module carries the VLAN."""
    still = session.scalar(
        select(SpanMember.switch_id)
        .join(Switch, Switch.id == SpanMember.switch_id)
        .where(SpanMember.segment_id == segment.id, Switch.module_id == module_id)
        .limit(1)
    )
    if still is not None:
        return
    pools = select(VlanPool.id).where(VlanPool.module_id == module_id).scalar_subquery()
    session.execute(
        delete(VlanAllocation).where(
            VlanAllocation.segment_id == segment.id, VlanAllocation.pool_id == pools
        )
    )


def _claim(session: Session, change: Change, *, dry_run: bool) -> list[TableChange]:
    report: list[TableChange] = []
    switches = {
        s.id: s for s in session.scalars(select(Switch).where(Switch.id.in_(list(change.deltas))))
    }
    for sw_id, delta in sorted(change.deltas.items(), key=lambda kv: switches[kv[0]].name):
        if delta.is_zero():
            continue
        sw = switches[sw_id]
        if not dry_run and not _conditional_update(session, sw_id, delta):
            session.refresh(sw)
        for table, (used_col, cap_col, _) in _COLUMNS.items():
            d = getattr(delta, table)
            if d:
                used = getattr(sw, used_col)
                report.append(TableChange(sw.name, table, used, used + d, getattr(sw, cap_col)))
        if not dry_run:
            overflow = [c for c in report if c.switch == sw.name and not c.fits]
            if overflow:
                c = overflow[0]
                raise CapacityExhausted(
                    f"switch {c.switch}: {_COLUMNS[c.table][2]} table would hold {c.after} "
                    f"entries, capacity {c.capacity}",
                    field="host",
                    code="switch_table_full",
                )
            session.refresh(sw)
    return report


def _conditional_update(session: Session, sw_id: uuid.UUID, d: TableDelta) -> bool:
    result = session.execute(
        update(Switch)
        .where(
            Switch.id == sw_id,
            Switch.used_mac + d.mac <= Switch.mac_capacity,
            Switch.used_arp + d.arp <= Switch.arp_capacity,
            Switch.used_vlans + d.vlans <= Switch.vlan_capacity,
        )
        .values(
            used_mac=Switch.used_mac + d.mac,
            used_arp=Switch.used_arp + d.arp,
            used_vlans=Switch.used_vlans + d.vlans,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def bind_many(
    session: Session, segment: Segment, module: Module, ports: list[tuple[uuid.UUID, int]]
) -> list[TableChange]:
    """Many ports of ``segment`` now live below the given ToRs (``(tor_id, ips)`` each).

    The batch form of :func:`bind`: the ports join one after the other in the pure
    model, and the summed deltas are claimed with one conditional ``UPDATE`` per
    switch. Every table only grows here, so the sum fits exactly when each step
    does; a routed CLOS still refuses a second ToR, and a refusal names the switch.
    """
    if not ports:
        return []
    session.scalar(
        select(Segment.id).where(Segment.id == segment.id).with_for_update(key_share=True)
    )
    view = segment_view(session, segment, module)
    tor_ports = dict(view.tor_ports)
    total: dict[uuid.UUID, TableDelta] = {}
    joined: dict[uuid.UUID, int] = {}
    for tor_id, ips in ports:
        step = SegmentView(view.vlan, view.switched, view.aggregation, tor_ports)
        change = port_joins(step, tor_id, ips)
        for sw_id, d in change.deltas.items():
            acc = total.setdefault(sw_id, TableDelta())
            acc.mac, acc.arp, acc.vlans = acc.mac + d.mac, acc.arp + d.arp, acc.vlans + d.vlans
        tor_ports[tor_id] = tor_ports.get(tor_id, 0) + 1
        joined[tor_id] = joined.get(tor_id, 0) + 1
    report = _claim(session, Change(deltas=total, joined=set(), left=set()), dry_run=False)
    members = {
        m.switch_id: m
        for m in session.scalars(
            select(SpanMember).where(
                SpanMember.segment_id == segment.id, SpanMember.switch_id.in_(list(joined))
            )
        )
    }
    for tor_id, n in joined.items():
        member = members.get(tor_id)
        if member is None:
            session.add(SpanMember(segment_id=segment.id, switch_id=tor_id, ports=n))
        else:
            member.ports += n
    session.flush()
    return report
