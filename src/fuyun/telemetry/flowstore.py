"""The flow store: where rolled-up traffic lives, behind a small protocol.

The database (SQLite or PostgreSQL, the same tables as everything else) is the
default. A fabric whose traffic outgrows it implements :class:`FlowStore` over a
column store — docs/telemetry.md sketches ClickHouse — and nothing above this
module changes: the collector only writes rows, the services only ask the
questions below, and tenant scoping is decided by the caller passing
``tenant_id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fuyun.telemetry.rollup import InterfaceRow, TrafficRow

# Resolution (seconds) -> how long its buckets are kept (seconds).
DEFAULT_RETENTION: dict[int, int] = {10: 86_400, 60: 14 * 86_400, 3600: 400 * 86_400}


@dataclass(frozen=True)
class TrafficQuery:
    """A window of one resolution, optionally narrowed; ``tenant_id=None`` means all tenants."""

    resolution_s: int
    since: datetime
    until: datetime
    tenant_id: uuid.UUID | None = None
    vm_id: uuid.UUID | None = None
    network_id: uuid.UUID | None = None
    vm_ids: frozenset[uuid.UUID] | None = None  # only these VMs (a page's busiest few)


@dataclass(frozen=True)
class Total:
    """Traffic of one subject (a VM or a tenant) over a window."""

    key: uuid.UUID
    tenant_id: uuid.UUID
    tx_bytes: int
    rx_bytes: int
    tx_packets: int
    rx_packets: int
    samples: int

    @property
    def bytes(self) -> int:
        return self.tx_bytes + self.rx_bytes


class FlowStore(Protocol):
    """Life cycle: ``write`` from one collector per fabric; reads from any number of API
    processes; ``expire`` on a timer. Writes of the same bucket add up (upsert)."""

    def write(self, traffic: Sequence[TrafficRow], interfaces: Sequence[InterfaceRow]) -> None:
        """Add 10-second rows to every resolution's bucket that contains them."""
        ...

    def series(self, q: TrafficQuery) -> list[TrafficRow]:
        """Rows of the window, oldest first."""
        ...

    def per_bucket(self, q: TrafficQuery) -> list[tuple[datetime, int, int]]:
        """(bucket start, tx bytes, rx bytes) summed over every row of each bucket, oldest
        first: a chart of a whole tenant or fabric without one row per VM and bucket."""
        ...

    def top(self, q: TrafficQuery, *, by: str, limit: int) -> list[Total]:
        """Totals over the window grouped ``by`` "vm" or "tenant", largest first."""
        ...

    def interfaces(self, q: TrafficQuery) -> list[InterfaceRow]:
        """Interface deltas of the window (``tenant_id`` narrows to that tenant's ports)."""
        ...

    def expire(self, now: datetime) -> int:
        """Drop buckets older than their resolution's retention; return how many."""
        ...
