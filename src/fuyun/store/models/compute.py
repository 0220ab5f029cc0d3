"""Virtual machines."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


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
