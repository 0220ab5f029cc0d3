"""The default flow store: the control plane's own database (SQLite or PostgreSQL).

Each 10-second row is added to its 10 s, 1 min and 1 h bucket with an
``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` on the bucket's unique
key, so a bucket written by several flushes (or collectors) sums correctly and a
crash loses at most the rows not yet flushed. Both dialects of SQLAlchemy build
the same statement; no SQL is written by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, desc, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fuyun.store.engine import Database
from fuyun.store.models import InterfaceBucket, TrafficBucket
from fuyun.store.types import new_id
from fuyun.telemetry.flowstore import DEFAULT_RETENTION, Total, TrafficQuery
from fuyun.telemetry.rollup import InterfaceRow, TrafficRow, bucket_of, to_time

_TRAFFIC_SUMS = ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets", "samples")
_IF_SUMS = (
    "seconds",
    "in_octets",
    "out_octets",
    "in_errors",
    "out_errors",
    "in_discards",
    "out_discards",
)


class DatabaseFlowStore:
    """:class:`~fuyun.telemetry.flowstore.FlowStore` over the store's tables."""

    def __init__(self, db: Database, retention: dict[int, int] | None = None):
        self.db = db
        self.retention = dict(retention or DEFAULT_RETENTION)

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self.db.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def write(self, traffic: Sequence[TrafficRow], interfaces: Sequence[InterfaceRow]) -> None:
        t_rows = _merge(
            [_widen(r, res) for r in traffic for res in self.retention],
            ("resolution_s", "bucket_start", "vm_id", "network_id"),
            _TRAFFIC_SUMS,
        )
        i_rows = _merge(
            [_widen(r, res) for r in interfaces for res in self.retention],
            ("resolution_s", "bucket_start", "agent", "if_index"),
            _IF_SUMS,
        )
        with self.db.write_session() as s:
            if t_rows:
                ins = self._insert(TrafficBucket.__table__)
                s.execute(
                    ins.on_conflict_do_update(
                        index_elements=["resolution_s", "bucket_start", "vm_id", "network_id"],
                        set_={
                            c: getattr(ins.excluded, c) + TrafficBucket.__table__.c[c]
                            for c in _TRAFFIC_SUMS
                        },
                    ),
                    t_rows,
                )
            if i_rows:
                ins = self._insert(InterfaceBucket.__table__)
                cols = InterfaceBucket.__table__.c
                set_: dict[str, Any] = {c: getattr(ins.excluded, c) + cols[c] for c in _IF_SUMS}
                set_.update(
                    speed_bps=ins.excluded.speed_bps,
                    host=func.coalesce(ins.excluded.host, cols.host),
                    vm_id=func.coalesce(ins.excluded.vm_id, cols.vm_id),
                    tenant_id=func.coalesce(ins.excluded.tenant_id, cols.tenant_id),
                )
                s.execute(
                    ins.on_conflict_do_update(
                        index_elements=["resolution_s", "bucket_start", "agent", "if_index"],
                        set_=set_,
                    ),
                    i_rows,
                )

    def series(self, q: TrafficQuery) -> list[TrafficRow]:
        t = TrafficBucket
        # Columns, not entities: a tenant's window is tens of thousands of rows, and
        # building an ORM object per row costs ten times the query.
        cols = [t.resolution_s, t.bucket_start, t.tenant_id, t.vm_id, t.network_id]
        stmt = _narrow(select(*cols, *(getattr(t, c) for c in _TRAFFIC_SUMS)), t, q)
        with self.db.read_session() as s:
            return [TrafficRow(*r) for r in s.execute(stmt.order_by(t.bucket_start, t.vm_id))]

    def per_bucket(self, q: TrafficQuery) -> list[tuple[datetime, int, int]]:
        t = TrafficBucket
        stmt = (
            _narrow(select(t.bucket_start, func.sum(t.tx_bytes), func.sum(t.rx_bytes)), t, q)
            .group_by(t.bucket_start)
            .order_by(t.bucket_start)
        )
        with self.db.read_session() as s:
            return [(b, int(tx or 0), int(rx or 0)) for b, tx, rx in s.execute(stmt)]

    def top(self, q: TrafficQuery, *, by: str, limit: int) -> list[Total]:
        t = TrafficBucket
        sums = [func.sum(getattr(t, c)) for c in _TRAFFIC_SUMS]
        total = func.sum(t.tx_bytes + t.rx_bytes)
        # A VM has one tenant, so grouping by (vm, tenant) is grouping by VM.
        keys = (t.vm_id, t.tenant_id) if by == "vm" else (t.tenant_id, t.tenant_id)
        stmt = (
            _narrow(select(*keys, *sums), t, q)
            .group_by(*dict.fromkeys(keys))
            .order_by(desc(total), keys[0])
            .limit(limit)
        )
        with self.db.read_session() as s:
            return [
                Total(k, ten, *(int(v or 0) for v in vals)) for k, ten, *vals in s.execute(stmt)
            ]

    def interfaces(self, q: TrafficQuery) -> list[InterfaceRow]:
        i = InterfaceBucket
        stmt = select(i).where(
            i.resolution_s == q.resolution_s, i.bucket_start >= q.since, i.bucket_start < q.until
        )
        if q.tenant_id is not None:
            stmt = stmt.where(i.tenant_id == q.tenant_id)
        if q.vm_id is not None:
            stmt = stmt.where(i.vm_id == q.vm_id)
        if q.vm_ids is not None:
            stmt = stmt.where(i.vm_id.in_(q.vm_ids))
        with self.db.read_session() as s:
            return [
                InterfaceRow(
                    r.resolution_s,
                    r.bucket_start,
                    r.agent,
                    r.if_index,
                    r.host,
                    r.vm_id,
                    r.tenant_id,
                    r.speed_bps,
                    r.seconds,
                    r.in_octets,
                    r.out_octets,
                    r.in_errors,
                    r.out_errors,
                    r.in_discards,
                    r.out_discards,
                )
                for r in s.scalars(stmt.order_by(i.bucket_start, i.agent, i.if_index))
            ]

    def expire(self, now: datetime) -> int:
        removed = 0
        with self.db.write_session() as s:
            for res, keep_s in self.retention.items():
                cutoff = now - timedelta(seconds=keep_s)
                removed += _delete_older(s, TrafficBucket, res, cutoff)
                removed += _delete_older(s, InterfaceBucket, res, cutoff)
        return removed


def _delete_older(s: Session, model: Any, res: int, cutoff: datetime) -> int:
    result = s.execute(delete(model).where(model.resolution_s == res, model.bucket_start < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def _narrow(stmt: Any, t: Any, q: TrafficQuery) -> Any:
    stmt = stmt.where(
        t.resolution_s == q.resolution_s, t.bucket_start >= q.since, t.bucket_start < q.until
    )
    if q.tenant_id is not None:
        stmt = stmt.where(t.tenant_id == q.tenant_id)
    if q.vm_id is not None:
        stmt = stmt.where(t.vm_id == q.vm_id)
    if q.network_id is not None:
        stmt = stmt.where(t.network_id == q.network_id)
    if q.vm_ids is not None:
        stmt = stmt.where(t.vm_id.in_(q.vm_ids))
    return stmt


def _widen(row: Any, resolution_s: int) -> dict[str, Any]:
    """The row as it adds to the ``resolution_s`` bucket that contains it."""
    start = to_time(bucket_of(row.bucket_start.timestamp(), resolution_s))
    return {**vars(replace(row, resolution_s=resolution_s, bucket_start=start)), "id": new_id()}


def _merge(
    rows: list[dict[str, Any]], key: tuple[str, ...], sums: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Add up rows with the same key first: one statement may not touch a row twice."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        k = tuple(r[c] for c in key)
        have = merged.get(k)
        if have is None:
            merged[k] = r
        else:
            for c in sums:
                have[c] += r[c]
            for c in ("host", "vm_id", "tenant_id"):
                if c in r and have.get(c) is None:
                    have[c] = r[c]
    return list(merged.values())
