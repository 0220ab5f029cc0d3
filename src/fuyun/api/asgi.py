"""ASGI entry point for servers that import the app: ``uvicorn --factory fuyun.api.asgi:app``.

Settings come from the environment (``FUYUN_DATABASE_URL`` and friends). The schema is
upgraded on start under an advisory lock, so several processes may start at once.
"""

from __future__ import annotations

from fastapi import FastAPI

from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.services.memory import (
    GEN0_THRESHOLD,
    GEN1_THRESHOLD,
    GEN2_THRESHOLD,
    settle_after_startup,
)
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade

#: (young, middle, old) collection thresholds for a serving process: one setting,
#: in :mod:`fuyun.services.memory`, for the API, the worker and the benchmarks.
SERVER_GC_THRESHOLDS = (GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


def app() -> FastAPI:
    settings = Settings.from_env()
    db = Database(settings.database_url)
    upgrade(db.engine)
    application = create_app(settings, db=db)
    freeze_startup_objects()
    return application


def freeze_startup_objects() -> None:
    """Move everything allocated at start-up out of the garbage collector's sight and
    raise its thresholds (:mod:`fuyun.services.memory`).

    The ~200k long-lived objects of FastAPI, pydantic and SQLAlchemy otherwise make
    every full collection pause a request for 250-400 ms on a small machine.
    """
    settle_after_startup(SERVER_GC_THRESHOLDS)
