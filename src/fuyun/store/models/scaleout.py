"""Tables of the scale-out mode: replayable idempotent requests and host agent credentials."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin


class IdempotencyKey(IdMixin, Base):
    """The first answer to a mutating request sent with an ``Idempotency-Key``.

    Unique per (principal, key): a retry by the same caller finds the row and gets the
    stored answer; another caller's identical key is another row. ``status`` is NULL
    while the first request is still being served.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),
        Index("ix_idempotency_keys_expires", "expires_at"),
    )

    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    status: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(128))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class HostCredential(IdMixin, Base):
    """A host agent's bearer secret (digest only): it reads and reports for one host only."""

    __tablename__ = "host_credentials"

    host_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
