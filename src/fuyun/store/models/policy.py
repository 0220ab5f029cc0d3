"""Security policy intent (groups, rules, memberships, global rules) and device desired state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin
from fuyun.store.types import utcnow


class SecurityGroup(IdMixin, TimestampMixin, Base):
    __tablename__ = "security_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_security_groups_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")


class SecurityGroupRule(IdMixin, TimestampMixin, Base):
    __tablename__ = "security_group_rules"
    __table_args__ = (
        CheckConstraint(
            "port_min IS NULL OR (port_min >= 0 AND port_max <= 65535 AND port_min <= port_max)",
            name="port_range",
        ),
        CheckConstraint(
            "NOT (remote_cidr IS NOT NULL AND remote_group_id IS NOT NULL)", name="one_remote"
        ),
    )

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8))
    ethertype: Mapped[int] = mapped_column(default=4)
    protocol: Mapped[str] = mapped_column(String(8), default="any")
    port_min: Mapped[int | None]
    port_max: Mapped[int | None]
    remote_cidr: Mapped[str | None] = mapped_column(String(64))
    remote_group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("security_groups.id", ondelete="RESTRICT"), index=True
    )
    description: Mapped[str] = mapped_column(String(256), default="")


class PortSecurityGroup(Base):
    __tablename__ = "port_security_groups"

    port_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("security_groups.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class GlobalRule(IdMixin, TimestampMixin, Base):
    """An operator's rule for every port; tenants cannot override it."""

    __tablename__ = "global_rules"

    action: Mapped[str] = mapped_column(String(8))  # allow | deny
    direction: Mapped[str] = mapped_column(String(8))
    ethertype: Mapped[int] = mapped_column(default=4)
    protocol: Mapped[str] = mapped_column(String(8), default="any")
    port_min: Mapped[int | None]
    port_max: Mapped[int | None]
    remote_cidr: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(default=100)
    description: Mapped[str] = mapped_column(String(256), default="")


class DeviceState(IdMixin, Base):
    """What one device should enforce, with generations: desired vs applied shows lag."""

    __tablename__ = "device_states"
    __table_args__ = (
        UniqueConstraint(
            "device_type", "device_name", "enforcement_point", name="uq_device_states_device"
        ),
        Index("ix_device_states_lag", "desired_generation", "applied_generation"),
    )

    device_type: Mapped[str] = mapped_column(String(16))  # host | switch | guest
    device_name: Mapped[str] = mapped_column(String(64))
    enforcement_point: Mapped[str] = mapped_column(String(16))
    flavor: Mapped[str] = mapped_column(String(16))  # ovs | linux-bridge | iptables | nxos ...
    ir: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rendered: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64), default="")
    desired_generation: Mapped[int] = mapped_column(default=0)
    applied_generation: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    applied_at: Mapped[datetime | None]
    # What the device's agent last said it saw that differs from the desired state.
    drift: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reported_at: Mapped[datetime | None]
