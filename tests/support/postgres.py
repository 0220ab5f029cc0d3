"""A private PostgreSQL cluster for the test session.

One cluster per session (``initdb`` + ``pg_ctl`` as the ``postgres`` user on a
free loopback port, in a temporary directory); one migrated template database;
each test gets its own database copied from the template, which takes a few
milliseconds instead of a migration run.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from fuyun.store.engine import make_engine
from fuyun.store.migrate import upgrade

PG_BIN_CANDIDATES = (
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
)
TEMPLATE = "fuyun_template"


def find_pg_bin() -> Path | None:
    env = os.environ.get("FUYUN_PG_BIN")
    for candidate in ([env] if env else []) + list(PG_BIN_CANDIDATES):
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    port: int
    datadir: Path
    bin: Path
    as_user: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def stop(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = make_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}'))
        admin.dispose()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = sa.engine.make_url(url).database
        admin = make_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """Start a throwaway cluster; raises RuntimeError with the reason when it cannot."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise RuntimeError("no PostgreSQL server binaries (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="fuyun-pg-"))
    as_user = None
    if os.geteuid() == 0:
        as_user = "postgres"
        try:
            pw = pwd.getpwnam(as_user)
        except KeyError as exc:
            raise RuntimeError("running as root but there is no 'postgres' user") from exc
        os.chown(base, pw.pw_uid, pw.pw_gid)
    cluster = PgCluster(port=_free_port(), datadir=base / "data", bin=pg_bin, as_user=as_user)
    try:
        cluster._run(
            "initdb",
            "-D",
            str(cluster.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
            f"-c unix_socket_directories={base}"
        )
        cluster._run(
            "pg_ctl", "-D", str(cluster.datadir), "-o", opts, "-l", str(base / "log"), "-w", "start"
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {detail.strip()[:400]}") from exc
    try:
        admin = make_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {TEMPLATE}"))
        admin.dispose()
        engine = make_engine(cluster.url(TEMPLATE))
        upgrade(engine)
        engine.dispose()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
