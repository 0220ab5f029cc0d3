"""module_links: L2 links between two modules of one site

Revision ID: 0017
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "module_links",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("module_a_id", sa.Uuid(), nullable=False),
        sa.Column("module_b_id", sa.Uuid(), nullable=False),
        sa.Column("l2_extension", sa.String(length=16), nullable=False),
        sa.Column("bandwidth_mbps", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "module_a_id <> module_b_id", name=op.f("ck_module_links_distinct_modules")
        ),
        sa.ForeignKeyConstraint(
            ["module_a_id"],
            ["modules.id"],
            name=op.f("fk_module_links_module_a_id_modules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["module_b_id"],
            ["modules.id"],
            name=op.f("fk_module_links_module_b_id_modules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_links")),
        sa.UniqueConstraint("name", name=op.f("uq_module_links_name")),
    )
    for column in ("module_a_id", "module_b_id"):
        op.create_index(op.f(f"ix_module_links_{column}"), "module_links", [column])


def downgrade() -> None:
    op.drop_table("module_links")
