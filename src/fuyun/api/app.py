"""The FastAPI application factory."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from fuyun import __version__, portal
from fuyun.api import errors, metrics
from fuyun.api.context import AppContext
from fuyun.api.idempotency import IdempotencyMiddleware
from fuyun.api.routes import (
    agent_netservices,
    agents,
    audit,
    drift,
    groups,
    identity,
    inventory,
    migrations,
    networks,
    plans,
    policy,
    qos,
    route_leaks,
    system,
    tenants,
    traffic,
    vms,
    workflows,
)
from fuyun.config import Settings
from fuyun.drivers.compute import ComputeDriver, create_driver
from fuyun.portal.config import PortalConfig
from fuyun.services.runtime import Runtime
from fuyun.services.signin_limit import SignInLimiter
from fuyun.store.engine import Database

API_PREFIX = "/api/v1"


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before anything parses them.

    Checks ``Content-Length`` up front and counts streamed chunks, so a lying or
    chunked client is cut off too.
    """

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message  # type: ignore[no-any-return]

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        response = errors.error_response(
            413, "too_large", f"request body exceeds {self.limit} bytes"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    compute_driver: ComputeDriver | None = None,
    runtime: Runtime | None = None,
) -> FastAPI:
    db = runtime.db if runtime is not None else (db or Database(settings.database_url))
    if runtime is None:
        runtime = Runtime(db, settings, compute_driver or create_driver(settings.compute_driver))
    app = FastAPI(
        title="fuyun",
        version=__version__,
        description="Control plane for multi-tenant virtualized data centers.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    portal_config = PortalConfig.from_env()
    limiter = SignInLimiter(
        per_account=portal_config.failures_per_account,
        per_address=portal_config.failures_per_address,
        window_s=portal_config.failure_window_s,
    )
    app.state.ctx = AppContext(settings=settings, db=db, runtime=runtime, signin_limiter=limiter)
    errors.install(app)
    for module in (
        system,
        identity,
        tenants,
        inventory,
        networks,
        route_leaks,
        policy,
        qos,
        migrations,  # before vms: /vms/{id}/migrate is not a power verb
        vms,
        drift,
        groups,
        workflows,
        audit,
        traffic,
        agents,
        agent_netservices,
        plans,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    portal.install(app, portal_config)  # the portal and console at /, its assets at /static
    metrics.install(app, db)
    # Added last = outermost: the body limit is checked before the idempotency layer
    # reads a body to fingerprint it.
    app.add_middleware(IdempotencyMiddleware, db=db, ttl_s=settings.idempotency_ttl_s)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
