"""Migration 0016: hosts of an existing store get the ToR interface their index derives."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select, update

from fuyun.fabric.torports import fill_tor_ports
from fuyun.store.engine import Database
from fuyun.store.migrate import alembic_config, upgrade
from fuyun.store.models import Host
from tests.fabric.conftest import build_tiny
from tests.fabric.test_loader import load


def test_upgrade_backfills_each_hosts_tor_interface_in_name_order(db: Database) -> None:
    load(db, build_tiny())
    command.downgrade(alembic_config(db.engine), "-1")  # a store from before the column
    upgrade(db.engine)
    with db.read_session() as s:
        backfilled = {n: p for n, p in s.execute(select(Host.name, Host.tor_port))}
    # tiny lists each ToR's hosts in name order, so the file's derivation agrees.
    assert backfilled == {h.name: h.tor_port for h in fill_tor_ports(build_tiny()).hosts}
    with db.write_session() as s:  # and the column is writable again after the round trip
        s.execute(update(Host).where(Host.name == "a-h1").values(tor_port="Ethernet1/48"))
