"""Virtual machines and the groups that constrain where they run."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


class ServerGroup(IdMixin, TimestampMixin, Base):
    """VMs kept together (affinity) or apart (anti-affinity) at a level of the fabric."""

    __tablename__ = "server_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_server_groups_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(16))  # affinity | anti-affinity
    level: Mapped[str] = mapped_column(String(16))  # host | tor | module | site


class Vm(IdMixin, TimestampMixin, Base):
    __tablename__ = "vms"
    __table_args__ = (
        Index("ix_vms_tenant_state", "tenant_id", "state"),
        Index("ix_vms_host_state", "host_id", "state"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(64))
    flavor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flavors.id"))
    image: Mapped[str] = mapped_column(String(128), default="debian-12")
    host_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("hosts.id"))
    state: Mapped[str] = mapped_column(String(16), default="building")
    vcpus: Mapped[int]
    ram_mb: Mapped[int]
    disk_gb: Mapped[int]
    bandwidth_mbps: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(1024))
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("server_groups.id", ondelete="SET NULL"), index=True
    )
    # Why this host: filter counts and top scores from the scheduling decision.
    placement: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
