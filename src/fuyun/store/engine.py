"""Engines and sessions for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on. Its transactions start as
``BEGIN`` for reads and ``BEGIN IMMEDIATE`` for writes (see :func:`write_session`),
so two writers queue on the busy timeout instead of deadlocking when both try
to upgrade a read lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from fuyun.store.types import EncodedJson

WRITE_OPTION = "fuyun_write"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def json_text(value: Any) -> str:
    """The text a JSON column stores: a document's own when it carries one."""
    if isinstance(value, EncodedJson):
        return value.text
    return json.dumps(value)


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> Engine:
    """Create an engine tuned for ``url``'s database."""
    kwargs.setdefault("json_serializer", json_text)
    if is_sqlite(url):
        memory = make_url(url).database in (None, "", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
            **kwargs,
        )
        _tune_sqlite(engine)
        return engine
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    options.update(kwargs)
    return create_engine(url, echo=echo, **options)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """One engine and its session factory; the process-wide handle to the store."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer. Queueing writers of this process on a lock, instead of
        # on SQLite's busy handler (which sleeps in growing steps), keeps latency flat
        # under concurrency. Other processes still meet the busy timeout.
        self._writer = threading.RLock() if is_sqlite(url) else None

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for queries, never committed.

        Closing (not rolling back) ends the transaction without expiring what was
        loaded, so the objects can be read after the block.
        """
        with self.sessions() as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        with self._serialised(), self.sessions() as session:
            session.connection(execution_options={WRITE_OPTION: True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def _serialised(self) -> Iterator[None]:
        if self._writer is None:
            yield
            return
        with self._writer:
            yield

    @contextmanager
    def scratch_session(self) -> Iterator[Session]:
        """A write transaction that is always rolled back: for dry runs."""
        with self._serialised(), self.sessions() as session:
            session.connection(execution_options={WRITE_OPTION: True})
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
