"""Health and version: unauthenticated, for load balancers and humans."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from fuyun import __version__
from fuyun.api.deps import Ctx
from fuyun.api.schemas import Health, Version

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
def health(ctx: Ctx) -> Health:
    with ctx.db.read_session() as session:
        session.execute(text("SELECT 1"))
    return Health(status="ok", database=ctx.db.engine.dialect.name)


@router.get("/version", response_model=Version)
def version() -> Version:
    return Version(version=__version__)
