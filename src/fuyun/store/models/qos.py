"""QoS intent (policies, the tenant aggregate) and the guarantees admitted on each host.

A policy is a tenant's named (guarantee, ceiling, burst). Ports carry a port
policy; a tenant carries at most one aggregate policy. What the fabric has
promised lives in :class:`QosClaim`: per (host, tenant), the Mbit/s added to the
host's and its ToR's guaranteed use. The claim row is what makes admission
re-computable: a service recomputes what a (tenant, host) needs from the ports
bound there now and moves the counters by the difference.
"""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


class QosPolicy(IdMixin, TimestampMixin, Base):
    __tablename__ = "qos_policies"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_qos_policies_tenant_name"),
        CheckConstraint(
            "guarantee_mbps >= 0 AND ceiling_mbps > 0 AND guarantee_mbps <= ceiling_mbps"
            " AND burst_bytes >= 0",
            name="rates",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(8))  # port | tenant
    guarantee_mbps: Mapped[int]
    ceiling_mbps: Mapped[int]
    burst_bytes: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(String(256), default="")


class TenantQos(Base):
    """The aggregate policy of a tenant: on every host its ports share one class."""

    __tablename__ = "tenant_qos"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    policy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("qos_policies.id", ondelete="RESTRICT"), index=True
    )


class QosClaim(Base):
    """Guaranteed Mbit/s admitted for one tenant on one host (and so on its ToR uplink)."""

    __tablename__ = "qos_claims"
    __table_args__ = (CheckConstraint("guaranteed_mbps > 0", name="positive"),)

    host_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    tor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("switches.id", ondelete="CASCADE"))
    guaranteed_mbps: Mapped[int]
