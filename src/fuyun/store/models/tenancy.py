"""Tenants (partners), their users, API tokens and quotas."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


class Tenant(IdMixin, TimestampMixin, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")


class Quota(Base):
    """Limits and current use per tenant.

    Use is claimed with a conditional ``UPDATE`` in the same transaction as the
    resource it pays for, so no amount of concurrency can overrun a limit.
    """

    __tablename__ = "quotas"
    __table_args__ = (
        CheckConstraint(
            "used_vms >= 0 AND used_vcpus >= 0 AND used_ram_mb >= 0 AND used_ips >= 0"
            " AND used_bandwidth_mbps >= 0",
            name="used_nonneg",
        ),
        CheckConstraint("used_rules >= 0", name="used_rules_nonneg"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    max_vms: Mapped[int]
    max_vcpus: Mapped[int]
    max_ram_mb: Mapped[int]
    max_ips: Mapped[int]
    max_bandwidth_mbps: Mapped[int]
    max_rules: Mapped[int] = mapped_column(default=500)
    used_vms: Mapped[int] = mapped_column(default=0)
    used_vcpus: Mapped[int] = mapped_column(default=0)
    used_ram_mb: Mapped[int] = mapped_column(default=0)
    used_ips: Mapped[int] = mapped_column(default=0)
    used_bandwidth_mbps: Mapped[int] = mapped_column(default=0)
    used_rules: Mapped[int] = mapped_column(default=0)


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role = 'operator' OR role = 'viewer' OR tenant_id IS NOT NULL", name="tenant_roles"
        ),
    )

    username: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(default=False)


class ApiToken(IdMixin, Base):
    """A bearer token. Only a SHA-256 digest of the secret is stored."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
