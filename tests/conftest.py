"""Shared fixtures: migrated databases (SQLite, and PostgreSQL in a private cluster), and
for real hypervisors the tiny guest (built once per session) and a QEMU lab; the OVS lab."""

from __future__ import annotations

import os
import subprocess

# Cheap password hashing for tests (set before fuyun.services.passwords is imported).
os.environ.setdefault("FUYUN_ARGON2_PROFILE", "fast")

from collections.abc import Iterator
from pathlib import Path

import pytest

from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade
from tests.support.capabilities import missing
from tests.support.guest import Guest, build_guest
from tests.support.postgres import PgCluster, running_cluster
from tests.support.qemu_lab import Lab, can_run_qemu
from tests.support.qemu_lab import lab as qemu_namespaces


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fuyun.db'}"


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    """A fresh, migrated SQLite database."""
    database = Database(sqlite_url)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL cluster for the whole session."""
    try:
        with running_cluster() as cluster:
            yield cluster
    except RuntimeError as exc:
        missing("PostgreSQL", str(exc))


@pytest.fixture
def pg_db(pg_cluster: PgCluster) -> Iterator[Database]:
    """A fresh, migrated PostgreSQL database (copied from the session's template)."""
    url = pg_cluster.create_database()
    database = Database(url)
    yield database
    database.dispose()
    pg_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> Database:
    """The same test on both supported databases."""
    return request.getfixturevalue("db" if request.param == "sqlite" else "pg_db")


@pytest.fixture(scope="session")
def guest() -> Guest:
    why = can_run_qemu()
    if why:
        missing("QEMU", why)
    try:
        return build_guest()
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        missing("guest image", f"cannot build it from Debian packages: {exc}")


@pytest.fixture(scope="module")
def qemu_lab() -> Iterator[Lab]:
    why = can_run_qemu()
    if why:
        missing("QEMU", why)
    with qemu_namespaces() as made:
        yield made


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One lab (private Open vSwitch, 2 ToRs x 2 hosts) shared by the whole session."""
    from tests.support.labworld import lab_world

    with lab_world(tmp_path_factory.mktemp("lab")) as world:
        yield world
