"""hosts.tor_port: the ToR interface each host is cabled to (trunk allowed lists per host)

Existing hosts get the name derived from their index under their ToR (in name order),
as a fabric file without ``tor_port`` would give them.

Revision ID: 0016
Revises: 0012
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None

# As fuyun.fabric.torports names them at this revision (a migration does not follow
# later changes of the code it would import).
_PREFIX = {"nxos": "Ethernet1/", "comware": "Ten-GigabitEthernet1/0/", "ovs": "port"}


def tor_port_name(platform: str, index: int) -> str:
    return f"{_PREFIX.get(platform, 'Ethernet1/')}{index}"


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("tor_port", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    hosts = sa.table(
        "hosts", sa.column("id"), sa.column("name"), sa.column("tor_id"), sa.column("tor_port")
    )
    switches = sa.table("switches", sa.column("id"), sa.column("platform"))
    rows = bind.execute(
        sa.select(hosts.c.id, hosts.c.name, hosts.c.tor_id, switches.c.platform).join(
            switches, switches.c.id == hosts.c.tor_id
        )
    ).all()
    by_tor: dict[object, list[tuple[str, object, str]]] = defaultdict(list)
    for host_id, name, tor_id, platform in rows:
        by_tor[tor_id].append((name, host_id, platform))
    updates = [
        {"host_id": host_id, "port": tor_port_name(platform, i)}
        for members in by_tor.values()
        for i, (_, host_id, platform) in enumerate(sorted(members, key=lambda m: m[0]), start=1)
    ]
    if updates:
        bind.execute(
            hosts.update()
            .where(hosts.c.id == sa.bindparam("host_id"))
            .values(tor_port=sa.bindparam("port")),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("tor_port")
