"""address_sets: a group's member addresses stored once; devices refer to sets by name

Revision ID: 0020
Revises: 0018

Fills the sets from the memberships already stored (bound ports' allocated
addresses, per group and family) and the device references from each device's
stored policy, so a store upgraded in place converges like a new one.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "address_sets",
        sa.Column("name", sa.String(length=48), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("family", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["security_groups.id"],
            name=op.f("fk_address_sets_group_id_security_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_address_sets")),
    )
    op.create_index(op.f("ix_address_sets_group_id"), "address_sets", ["group_id"])
    op.create_table(
        "address_set_members",
        sa.Column("set_name", sa.String(length=48), nullable=False),
        sa.Column("port_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.LargeBinary(length=16), nullable=False),
        sa.Column("host_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["set_name"],
            ["address_sets.name"],
            name=op.f("fk_address_set_members_set_name_address_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "set_name", "port_id", "address", name=op.f("pk_address_set_members")
        ),
    )
    op.create_index("ix_address_set_members_host", "address_set_members", ["host_id"])
    op.create_index(op.f("ix_address_set_members_port_id"), "address_set_members", ["port_id"])
    op.create_table(
        "device_address_sets",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("set_name", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device_states.id"],
            name=op.f("fk_device_address_sets_device_id_device_states"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "set_name", name=op.f("pk_device_address_sets")),
    )
    op.create_index(op.f("ix_device_address_sets_set_name"), "device_address_sets", ["set_name"])
    _fill()


def _fill() -> None:
    bind = op.get_bind()
    uid, addr = sa.Uuid(), sa.LargeBinary(16)
    # Typed here, not reflected: SQLite reflects UUID columns as text.
    psg = sa.table("port_security_groups", sa.column("port_id", uid), sa.column("group_id", uid))
    ports = sa.table("ports", sa.column("id", uid), sa.column("host_id", uid))
    ips = sa.table(
        "ip_allocations",
        sa.column("port_id", uid),
        sa.column("address", addr),
        sa.column("family", sa.Integer()),
        sa.column("state", sa.String()),
    )
    devices = sa.table(
        "device_states",
        sa.column("id", uid),
        sa.column("ir", sa.JSON()),
        sa.column("rendered", sa.Text()),
    )
    sets = sa.table(
        "address_sets",
        sa.column("name", sa.String()),
        sa.column("group_id", uid),
        sa.column("family", sa.Integer()),
        sa.column("generation", sa.Integer()),
        sa.column("size", sa.Integer()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    members = sa.table(
        "address_set_members",
        sa.column("set_name", sa.String()),
        sa.column("port_id", uid),
        sa.column("address", addr),
        sa.column("host_id", uid),
    )
    refs = sa.table(
        "device_address_sets", sa.column("device_id", uid), sa.column("set_name", sa.String())
    )
    rows = bind.execute(
        sa.select(psg.c.group_id, ips.c.family, psg.c.port_id, ips.c.address, ports.c.host_id)
        .join(ports, ports.c.id == psg.c.port_id)
        .join(ips, ips.c.port_id == psg.c.port_id)
        .where(ports.c.host_id.is_not(None), ips.c.state == "allocated")
    ).all()
    size: Counter[str] = Counter()
    group_of: dict[str, tuple[object, int]] = {}
    member_rows = []
    for group_id, family, port_id, address, host_id in rows:
        name = f"sg_{group_id.hex}_v{family}"
        size[name] += 1
        group_of[name] = (group_id, family)
        member_rows.append(
            {"set_name": name, "port_id": port_id, "address": address, "host_id": host_id}
        )
    now = datetime.now(UTC)
    if group_of:
        bind.execute(
            sets.insert(),
            [
                {
                    "name": n,
                    "group_id": g,
                    "family": f,
                    "generation": 1,
                    "size": size[n],
                    "updated_at": now,
                }
                for n, (g, f) in group_of.items()
            ],
        )
        bind.execute(members.insert(), member_rows)
    ref_rows = []
    referring = []
    for device_id, ir in bind.execute(sa.select(devices.c.id, devices.c.ir)):
        names = {str(s["n"]) for s in (ir or {}).get("sets", ())} if isinstance(ir, dict) else ()
        ref_rows += [{"device_id": device_id, "set_name": n} for n in sorted(names)]
        if names:
            referring.append({"d_id": device_id})
    if ref_rows:
        bind.execute(refs.insert(), ref_rows)
    if referring:
        # Their stored text holds the members as they were: rendered on read from now
        # on, with the sets' current members (a set change no longer rewrites it).
        bind.execute(
            devices.update().where(devices.c.id == sa.bindparam("d_id")).values(rendered=""),
            referring,
        )


def downgrade() -> None:
    op.drop_table("device_address_sets")
    op.drop_table("address_set_members")
    op.drop_table("address_sets")
