"""migrations: a port's second binding during a move, and batch moves

Revision ID: 0005
Revises: 0006
Create Date: 2026-11-26 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "migration_batches",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migration_batches")),
    )
    with op.batch_alter_table("migration_batches", schema=None) as batch_op:
        batch_op.create_index("ix_migration_batches_state", ["state"], unique=False)
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("peer_host_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_ports_peer_host_id"), ["peer_host_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_ports_peer_host_id_hosts"), "hosts", ["peer_host_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ports_peer_host_id_hosts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ports_peer_host_id"))
        batch_op.drop_column("peer_host_id")
    with op.batch_alter_table("migration_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_migration_batches_state")
    op.drop_table("migration_batches")
