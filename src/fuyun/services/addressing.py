"""IP allocation inside a subnet, in the database: next-free in O(log n).

A subnet's free addresses are kept as ranges (``ip_free_ranges``), indexed by
(subnet, first). Next-free locks and shrinks the lowest range: one index probe,
whatever the subnet's size or fill — a /8 costs what a /24 costs. Released
addresses wait in quarantine for ``hold_s`` seconds and are reused only when no
free range is left, oldest first. The unique index on (vrf, address) is the last
guard: no interleaving of allocators can hand an address out twice.

These helpers run inside the caller's transaction; they never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fuyun.domain.errors import Conflict
from fuyun.ipam.addresses import Span, pack, to_address, unpack
from fuyun.ipam.subnets import SubnetLayout, free_spans
from fuyun.store.models import FreeRange, IpAllocation, Subnet

LOCK_RETRIES = 8
ALLOCATED, QUARANTINED = "allocated", "quarantined"


def seed_free_ranges(session: Session, subnet: Subnet, sub_layout: SubnetLayout) -> None:
    session.add_all(
        FreeRange(subnet_id=subnet.id, first=pack(s.first), last=pack(s.last))
        for s in free_spans(sub_layout)
    )


def _lowest_range(session: Session, subnet_id: uuid.UUID) -> FreeRange | None:
    """Lock the lowest free range.

    On PostgreSQL a concurrent allocator may delete the row we waited on; the
    locked re-read then yields nothing although other ranges exist, so look again.
    """
    for _ in range(LOCK_RETRIES):
        row = session.scalars(
            select(FreeRange)
            .where(FreeRange.subnet_id == subnet_id)
            .order_by(FreeRange.first)
            .limit(1)
            .with_for_update()
        ).first()
        if row is not None:
            return row
        left = session.scalar(
            select(func.count()).select_from(FreeRange).where(FreeRange.subnet_id == subnet_id)
        )
        if not left:
            return None
    return None


def allocate_next(
    session: Session, subnet: Subnet, port_id: uuid.UUID | None, *, now: datetime, hold_s: int
) -> IpAllocation | None:
    """The lowest free address of ``subnet``, or a quarantined one past its hold; None if full."""
    free = _lowest_range(session, subnet.id)
    if free is not None:
        address = unpack(free.first)
        if free.first == free.last:
            session.delete(free)
        else:
            free.first = pack(address + 1)
        row = IpAllocation(
            vrf_id=subnet.vrf_id,
            subnet_id=subnet.id,
            address=pack(address),
            family=subnet.family,
            port_id=port_id,
            state=ALLOCATED,
        )
        session.add(row)
        session.flush()
        return row
    reusable = session.scalars(
        select(IpAllocation)
        .where(
            IpAllocation.subnet_id == subnet.id,
            IpAllocation.state == QUARANTINED,
            IpAllocation.released_at <= now - timedelta(seconds=hold_s),
        )
        .order_by(IpAllocation.released_at, IpAllocation.address)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if reusable is None:
        return None
    reusable.state, reusable.port_id, reusable.released_at = ALLOCATED, port_id, None
    session.flush()
    return reusable


def allocate_exact(
    session: Session,
    subnet: Subnet,
    address: int,
    port_id: uuid.UUID | None,
    *,
    now: datetime,
    hold_s: int,
) -> IpAllocation:
    """Take one named address, or raise a 409 saying why it is not free."""
    shown = to_address(address, subnet.family)
    if not unpack(subnet.first) <= address <= unpack(subnet.last):
        raise Conflict(f"{shown} is not inside {subnet.cidr}", field="ip")
    free = session.scalars(
        select(FreeRange)
        .where(FreeRange.subnet_id == subnet.id, FreeRange.first <= pack(address))
        .order_by(FreeRange.first.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if free is not None and unpack(free.last) >= address:
        _split(session, free, address)
        row = IpAllocation(
            vrf_id=subnet.vrf_id,
            subnet_id=subnet.id,
            address=pack(address),
            family=subnet.family,
            port_id=port_id,
            state=ALLOCATED,
        )
        session.add(row)
        session.flush()
        return row
    held = session.scalars(
        select(IpAllocation)
        .where(IpAllocation.vrf_id == subnet.vrf_id, IpAllocation.address == pack(address))
        .with_for_update()
    ).first()
    if held is None:
        raise Conflict(f"{shown} is reserved in {subnet.cidr}", field="ip", code="address_reserved")
    if held.state == ALLOCATED:
        raise Conflict(f"{shown} is already allocated", field="ip", code="address_in_use")
    assert held.released_at is not None
    until = held.released_at + timedelta(seconds=hold_s)
    if until > now:
        raise Conflict(
            f"{shown} is in quarantine until {until.isoformat()}",
            field="ip",
            code="address_quarantined",
        )
    held.state, held.port_id, held.released_at = ALLOCATED, port_id, None
    session.flush()
    return held


def _split(session: Session, free: FreeRange, address: int) -> None:
    first, last = unpack(free.first), unpack(free.last)
    if first == last:
        session.delete(free)
    elif address == first:
        free.first = pack(first + 1)
    elif address == last:
        free.last = pack(last - 1)
    else:
        free.last = pack(address - 1)
        session.flush()
        session.add(FreeRange(subnet_id=free.subnet_id, first=pack(address + 1), last=pack(last)))
    session.flush()


def release(session: Session, allocation: IpAllocation, *, now: datetime, hold_s: int) -> None:
    """Quarantine an address; with no hold, it is free again at once."""
    if hold_s <= 0:
        give_back(session, allocation.subnet_id, unpack(allocation.address))
        session.delete(allocation)
        return
    allocation.state, allocation.port_id, allocation.released_at = QUARANTINED, None, now


def give_back(session: Session, subnet_id: uuid.UUID, address: int) -> None:
    """Return one address to the free ranges, merging with its neighbours."""
    below = session.scalars(
        select(FreeRange)
        .where(FreeRange.subnet_id == subnet_id, FreeRange.last == pack(address - 1))
        .with_for_update()
    ).first()
    above = session.scalars(
        select(FreeRange)
        .where(FreeRange.subnet_id == subnet_id, FreeRange.first == pack(address + 1))
        .with_for_update()
    ).first()
    if below is not None and above is not None:
        below.last = above.last
        session.delete(above)
    elif below is not None:
        below.last = pack(address)
    elif above is not None:
        above.first = pack(address)
    else:
        session.add(FreeRange(subnet_id=subnet_id, first=pack(address), last=pack(address)))
    session.flush()


def free_count(session: Session, subnet_id: uuid.UUID) -> int:
    """Free addresses (quarantine excluded), summed over the ranges."""
    total = 0
    for first, last in session.execute(
        select(FreeRange.first, FreeRange.last).where(FreeRange.subnet_id == subnet_id)
    ):
        total += unpack(last) - unpack(first) + 1
    return total


def state_counts(session: Session, subnet_id: uuid.UUID) -> dict[str, int]:
    rows = session.execute(
        select(IpAllocation.state, func.count())
        .where(IpAllocation.subnet_id == subnet_id)
        .group_by(IpAllocation.state)
    )
    counts = {ALLOCATED: 0, QUARANTINED: 0}
    counts.update({state: n for state, n in rows})
    return counts


def drop_subnet_state(session: Session, subnet_id: uuid.UUID) -> None:
    session.execute(delete(FreeRange).where(FreeRange.subnet_id == subnet_id))
    session.execute(delete(IpAllocation).where(IpAllocation.subnet_id == subnet_id))


def free_spans_of(session: Session, subnet_id: uuid.UUID) -> list[Span]:
    return [
        Span(unpack(a), unpack(b))
        for a, b in session.execute(
            select(FreeRange.first, FreeRange.last)
            .where(FreeRange.subnet_id == subnet_id)
            .order_by(FreeRange.first)
        )
    ]


def take_run(session: Session, subnet: Subnet, n: int) -> list[int]:
    """Up to ``n`` of the lowest free addresses of ``subnet``, taken from its free ranges.

    The batch form of :func:`allocate_next` (without the quarantine fallback, which
    the caller takes one address at a time when this answers fewer than ``n``): the
    ranges are locked lowest first and each is shrunk or deleted once, so a run of
    500 addresses costs a statement or two, not 500. The caller inserts the rows.
    """
    taken: list[int] = []
    while len(taken) < n:
        ranges = list(
            session.scalars(
                select(FreeRange)
                .where(FreeRange.subnet_id == subnet.id)
                .order_by(FreeRange.first)
                .limit(8)
                .with_for_update()
            )
        )
        if not ranges:
            break
        for free in ranges:
            first, last = unpack(free.first), unpack(free.last)
            k = min(n - len(taken), last - first + 1)
            taken.extend(range(first, first + k))
            if first + k > last:
                session.delete(free)
            else:
                free.first = pack(first + k)
            if len(taken) >= n:
                break
        session.flush()
    return taken
