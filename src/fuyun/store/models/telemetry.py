"""Traffic statistics rolled up from sFlow, interface counters, and quality alerts.

Rows carry identifiers, not foreign keys: traffic history outlives the VMs,
networks and even tenants it describes, and must never block their deletion.
One row per (resolution, bucket, subject) — a unique key, so the collector adds
to a bucket with an upsert and two flushes of the same bucket sum, never repeat.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin
from fuyun.store.types import utcnow

_SUMMED = ("vm_id", "tx_bytes", "rx_bytes", "tx_packets", "rx_packets", "samples")


class TrafficBucket(IdMixin, Base):
    """Bytes and packets a VM port sent (tx) and received (rx) in one time bucket.

    Values are estimates: sampled frame lengths times the sampling rate.
    """

    __tablename__ = "traffic_buckets"
    __table_args__ = (
        UniqueConstraint(
            "resolution_s", "bucket_start", "vm_id", "network_id", name="uq_traffic_buckets_key"
        ),
        # Covering: what a window is summed for is in the index itself (revision 0012).
        Index("ix_traffic_buckets_tenant", "tenant_id", "resolution_s", "bucket_start", *_SUMMED),
        Index("ix_traffic_buckets_age", "resolution_s", "bucket_start", "tenant_id", *_SUMMED),
    )

    resolution_s: Mapped[int]
    bucket_start: Mapped[datetime]
    tenant_id: Mapped[uuid.UUID]
    vm_id: Mapped[uuid.UUID]
    network_id: Mapped[uuid.UUID]
    tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tx_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    rx_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    samples: Mapped[int] = mapped_column(BigInteger, default=0)


class InterfaceBucket(IdMixin, Base):
    """What one exporter interface's counters moved by in one bucket (deltas, not totals)."""

    __tablename__ = "interface_buckets"
    __table_args__ = (
        UniqueConstraint(
            "resolution_s", "bucket_start", "agent", "if_index", name="uq_interface_buckets_key"
        ),
        Index("ix_interface_buckets_age", "resolution_s", "bucket_start"),
    )

    resolution_s: Mapped[int]
    bucket_start: Mapped[datetime]
    agent: Mapped[str] = mapped_column(String(64))
    if_index: Mapped[int] = mapped_column(BigInteger)
    host: Mapped[str | None] = mapped_column(String(64))
    vm_id: Mapped[uuid.UUID | None]
    tenant_id: Mapped[uuid.UUID | None]
    speed_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    in_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    out_octets: Mapped[int] = mapped_column(BigInteger, default=0)
    in_errors: Mapped[int] = mapped_column(BigInteger, default=0)
    out_errors: Mapped[int] = mapped_column(BigInteger, default=0)
    in_discards: Mapped[int] = mapped_column(BigInteger, default=0)
    out_discards: Mapped[int] = mapped_column(BigInteger, default=0)


class TrafficAlert(IdMixin, Base):
    """A broken promise or a hot link, once per subject and bucket."""

    __tablename__ = "traffic_alerts"
    __table_args__ = (
        UniqueConstraint("kind", "subject", "bucket_start", name="uq_traffic_alerts_key"),
        Index("ix_traffic_alerts_tenant", "tenant_id", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(32))  # guarantee_missed | link_over_threshold
    subject: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[uuid.UUID | None]
    vm_id: Mapped[uuid.UUID | None]
    bucket_start: Mapped[datetime]
    value_bps: Mapped[float] = mapped_column(Float)
    threshold_bps: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
