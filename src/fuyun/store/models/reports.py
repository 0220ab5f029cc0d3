"""Stored results of whole-fabric computations (isolation verification, capacity plans).

Such a computation takes seconds on a real fabric, so a page must not repeat it on
every load: a run is stored once, with the state it was computed from (``basis``),
and read back until someone runs it again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin
from fuyun.store.types import utcnow


class StoredReport(IdMixin, Base):
    """One run of a report: when, by whom, from which state, its summary and its document."""

    __tablename__ = "stored_reports"
    __table_args__ = (Index("ix_stored_reports_kind_created", "kind", "created_at"),)

    kind: Mapped[str] = mapped_column(String(16))  # verify | plan
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[uuid.UUID | None]
    # What the result was computed from (e.g. compiled generations), to tell staleness.
    basis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(default=0.0)
