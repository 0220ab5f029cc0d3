"""Batch moves (evacuate a host, drain a ToR, rebalance a module) and their progress.

Each VM's move is its own persisted workflow (kind ``vm.migrate``); a batch row
lists the VMs it covers and counts how many moved, failed or wait, so progress
can be shown while it runs and read back afterwards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


class MigrationBatch(IdMixin, TimestampMixin, Base):
    __tablename__ = "migration_batches"
    __table_args__ = (Index("ix_migration_batches_state", "state"),)

    kind: Mapped[str] = mapped_column(String(32))  # evacuate-host | drain-tor | rebalance-module
    target: Mapped[str] = mapped_column(String(64))  # the host, ToR or module name
    # running | succeeded | partial | failed | interrupted
    state: Mapped[str] = mapped_column(String(16), default="running")
    actor: Mapped[str] = mapped_column(String(64), default="system")
    total: Mapped[int] = mapped_column(default=0)
    moved: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # Per VM: {"vm_id", "vm", "source", "target", "state", "workflow_id", "error"}.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
