"""route_leaks: operator-approved routes between two VRFs; network services applied generation

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "route_leaks",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("network_id", sa.Uuid(), nullable=False),
        sa.Column("vrf_id", sa.Uuid(), nullable=False),
        sa.Column("peer_tenant_id", sa.Uuid(), nullable=False),
        sa.Column("peer_network_id", sa.Uuid(), nullable=True),
        sa.Column("peer_vrf_id", sa.Uuid(), nullable=False),
        sa.Column("peer_prefix", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"],
            name=op.f("fk_route_leaks_network_id_networks"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["peer_network_id"], ["networks.id"],
            name=op.f("fk_route_leaks_peer_network_id_networks"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["peer_tenant_id"], ["tenants.id"],
            name=op.f("fk_route_leaks_peer_tenant_id_tenants"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["peer_vrf_id"], ["vrfs.id"],
            name=op.f("fk_route_leaks_peer_vrf_id_vrfs"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"],
            name=op.f("fk_route_leaks_tenant_id_tenants"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vrf_id"], ["vrfs.id"], name=op.f("fk_route_leaks_vrf_id_vrfs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_leaks")),
    )  # fmt: skip
    op.create_index("ix_route_leaks_state", "route_leaks", ["state"], unique=False)
    for column in ("tenant_id", "network_id", "peer_tenant_id", "peer_network_id"):
        op.create_index(op.f(f"ix_route_leaks_{column}"), "route_leaks", [column], unique=False)
    with op.batch_alter_table("networks") as batch:
        batch.add_column(
            sa.Column(
                "services_applied_generation", sa.Integer(), server_default="0", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("services_applied_generation")
    for column in ("tenant_id", "network_id", "peer_tenant_id", "peer_network_id"):
        op.drop_index(op.f(f"ix_route_leaks_{column}"), table_name="route_leaks")
    op.drop_index("ix_route_leaks_state", table_name="route_leaks")
    op.drop_table("route_leaks")
