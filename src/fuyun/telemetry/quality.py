"""Service quality: achieved vs guaranteed rate, ceiling hits, port drops, hot links.

Pure functions over rows, so the collector (on each closed bucket) and the API
(over any window) judge the same way.

A guarantee is *missed* in a bucket when the port achieved less than its
guarantee while its demand exceeded the guarantee. sFlow sees what was carried,
not what was wanted, so demand is estimated as what was carried plus what the
port's interface discarded in the same bucket (discards times the bucket's mean
frame size). A quiet VM below its guarantee is therefore not an alert — it asked
for less — while a VM held below its guarantee with frames dropped is.

A *ceiling hit* is a bucket at or above 95 % of the port's ceiling. A *hot link*
is an interface whose busier direction ran above ``threshold`` of its speed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fuyun.telemetry.rollup import InterfaceRow, TrafficRow

CEILING_HIT = 0.95


@dataclass(frozen=True)
class Guarantee:
    """A VM's promised rates in bit/s (0 = none), and where the numbers came from."""

    min_bps: int
    max_bps: int
    source: str


@dataclass
class VmQuality:
    vm_id: uuid.UUID
    tenant_id: uuid.UUID
    guaranteed_bps: int = 0
    ceiling_bps: int = 0
    achieved_bps: float = 0.0  # mean tx rate over the window
    peak_bps: float = 0.0  # busiest bucket's tx rate
    buckets: int = 0
    ceiling_hits: int = 0
    guarantee_missed: int = 0
    in_errors: int = 0
    out_errors: int = 0
    discards: int = 0
    _tx: list[tuple[datetime, int, int]] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class AlertDraft:
    kind: str  # guarantee_missed | link_over_threshold
    subject: str
    tenant_id: uuid.UUID | None
    vm_id: uuid.UUID | None
    bucket_start: datetime
    value_bps: float
    threshold_bps: float
    message: str


def evaluate(
    rows: Iterable[TrafficRow],
    interfaces: Iterable[InterfaceRow],
    guarantees: dict[uuid.UUID, Guarantee],
    *,
    resolution_s: int,
    window_s: float,
) -> list[VmQuality]:
    """Per VM over a window of ``window_s`` seconds of rows of ``resolution_s``."""
    by_vm: dict[uuid.UUID, VmQuality] = {}
    drops: dict[tuple[uuid.UUID, datetime], int] = defaultdict(int)
    for i in interfaces:
        if i.vm_id is None:
            continue
        owner = i.tenant_id or uuid.UUID(int=0)
        q = by_vm.setdefault(i.vm_id, VmQuality(i.vm_id, owner))
        q.in_errors += i.in_errors
        q.out_errors += i.out_errors
        q.discards += i.in_discards + i.out_discards
        drops[(i.vm_id, i.bucket_start)] += i.in_discards + i.out_discards
    for r in rows:
        q = by_vm.setdefault(r.vm_id, VmQuality(r.vm_id, r.tenant_id))
        q._tx.append((r.bucket_start, r.tx_bytes, r.tx_packets))
    for vm_id, q in by_vm.items():
        g = guarantees.get(vm_id, Guarantee(0, 0, "none"))
        q.guaranteed_bps, q.ceiling_bps = g.min_bps, g.max_bps
        total = 0
        for start, tx, pkts in q._tx:
            rate = tx * 8 / resolution_s
            total += tx
            q.peak_bps = max(q.peak_bps, rate)
            q.buckets += 1
            if g.max_bps and rate >= CEILING_HIT * g.max_bps:
                q.ceiling_hits += 1
            if missed(rate, g.min_bps, drops.get((vm_id, start), 0), tx, pkts, resolution_s):
                q.guarantee_missed += 1
        q.achieved_bps = total * 8 / window_s if window_s > 0 else 0.0
        q._tx = []
    return sorted(by_vm.values(), key=lambda q: (-q.achieved_bps, str(q.vm_id)))


def missed(rate_bps: float, min_bps: int, discards: int, tx: int, pkts: int, res: float) -> bool:
    """Achieved below the guarantee while demand (carried + dropped) exceeded it."""
    if not min_bps or rate_bps >= min_bps or discards <= 0:
        return False
    mean_frame = tx / pkts if pkts else 1500
    demand = rate_bps + discards * mean_frame * 8 / res
    return demand > min_bps


def bucket_alerts(
    rows: Iterable[TrafficRow],
    interfaces: Iterable[InterfaceRow],
    guarantees: dict[uuid.UUID, Guarantee],
    *,
    resolution_s: int,
    link_threshold: float,
) -> list[AlertDraft]:
    """The alerts one closed bucket raises."""
    rows, interfaces = list(rows), list(interfaces)
    drops: dict[tuple[uuid.UUID, datetime], int] = defaultdict(int)
    for i in interfaces:
        if i.vm_id is not None:
            drops[(i.vm_id, i.bucket_start)] += i.in_discards + i.out_discards
    out: list[AlertDraft] = []
    for r in rows:
        g = guarantees.get(r.vm_id)
        if g is None:
            continue
        rate = r.tx_bytes * 8 / resolution_s
        d = drops.get((r.vm_id, r.bucket_start), 0)
        if missed(rate, g.min_bps, d, r.tx_bytes, r.tx_packets, resolution_s):
            out.append(
                AlertDraft(
                    "guarantee_missed",
                    f"vm:{r.vm_id}",
                    r.tenant_id,
                    r.vm_id,
                    r.bucket_start,
                    rate,
                    float(g.min_bps),
                    f"VM {r.vm_id} carried {rate / 1e6:.1f} Mbit/s, guaranteed "
                    f"{g.min_bps / 1e6:.1f} Mbit/s, with {d} frames dropped",
                )
            )
    for i in interfaces:
        if i.speed_bps <= 0 or i.seconds <= 0:
            continue
        rate = max(i.in_octets, i.out_octets) * 8 / i.seconds
        limit = link_threshold * i.speed_bps
        if rate > limit:
            where = f"{i.host or i.agent} ifIndex {i.if_index}"
            out.append(
                AlertDraft(
                    "link_over_threshold",
                    f"if:{i.agent}:{i.if_index}",
                    i.tenant_id,
                    i.vm_id,
                    i.bucket_start,
                    rate,
                    limit,
                    f"link {where} ran at {rate / 1e6:.1f} Mbit/s, over "
                    f"{link_threshold:.0%} of {i.speed_bps / 1e6:.0f} Mbit/s",
                )
            )
    return out
