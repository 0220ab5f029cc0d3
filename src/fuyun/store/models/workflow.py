"""Persisted workflows: a row per operation, a row per step, recorded before each runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


class Workflow(IdMixin, TimestampMixin, Base):
    __tablename__ = "workflows"
    __table_args__ = (
        Index("ix_workflows_state_lease", "state", "lease_expires_at"),
        Index("ix_workflows_tenant_created", "tenant_id", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(32))
    # pending | running | succeeded | rolling_back | rolled_back | failed
    state: Mapped[str] = mapped_column(String(16), default="pending")
    tenant_id: Mapped[uuid.UUID | None]
    actor: Mapped[str] = mapped_column(String(64), default="system")
    subject: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(2048))
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)


class WorkflowStep(IdMixin, Base):
    __tablename__ = "workflow_steps"
    __table_args__ = (UniqueConstraint("workflow_id", "index", name="uq_workflow_steps_index"),)

    workflow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))
    # pending | running | done | failed | undoing | undone
    state: Mapped[str] = mapped_column(String(16), default="pending")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(2048))
