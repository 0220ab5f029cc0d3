"""ASGI entry point for servers that import the app: ``uvicorn --factory fuyun.api.asgi:app``.

Settings come from the environment (``FUYUN_DATABASE_URL`` and friends). The schema is
upgraded on start under an advisory lock, so several processes may start at once.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade

#: (young, middle, old) collection thresholds for a serving process.
SERVER_GC_THRESHOLDS = (20_000, 20, 20)


def app() -> FastAPI:
    settings = Settings.from_env()
    db = Database(settings.database_url)
    upgrade(db.engine)
    application = create_app(settings, db=db)
    freeze_startup_objects()
    return application


def freeze_startup_objects() -> None:
    """Move everything allocated at start-up out of the garbage collector's sight.

    The ~200k long-lived objects of FastAPI, pydantic and SQLAlchemy otherwise make
    every full collection pause a request for 250-400 ms on a small machine.
    """
    gc.collect()
    gc.freeze()
    # What a request allocates is short-lived; collecting the young generation every
    # 700 allocations (the default) mostly walks live request state. Fewer, larger
    # young collections, and a full one only after many of them.
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
