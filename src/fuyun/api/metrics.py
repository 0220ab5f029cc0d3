"""``/metrics`` for Prometheus, and the request latency histogram every request feeds.

The histogram is labelled by route template (``/api/v1/vms/{vm_id}``), never by raw
path, so ids do not explode the series. The page is the default registry (every
module's counters) followed by the store's gauges for this app's database. Under
``fuyun serve --workers N`` the processes' counters are merged through
``PROMETHEUS_MULTIPROC_DIR``, which ``serve`` sets up.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from fuyun.services.metrics import StoreCollector
from fuyun.store.engine import Database

REQUEST_LATENCY = Histogram(
    "fuyun_http_request_duration_seconds",
    "API request latency by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class LatencyMiddleware:
    """Time every HTTP request from first byte in to the response's start line out."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            REQUEST_LATENCY.labels(scope["method"], _template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def _template(scope: dict[str, Any]) -> str:
    """The matched route's template with its prefix (``/api/v1/vms/{vm_id}``), from the
    request path with each path parameter's value put back as its name."""
    if scope.get("route") is None:
        return "unmatched"  # 404s: random paths must not become series
    path = str(scope["path"])
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(f"/{value}", "/{" + name + "}", 1)
    return path


def _page(db: Database) -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        head = generate_latest(merged)
    else:
        head = generate_latest(REGISTRY)
    store = CollectorRegistry()
    store.register(StoreCollector(db))
    return head + generate_latest(store)


def install(app: FastAPI, db: Database) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics(_: Request) -> Response:
        return Response(await run_in_threadpool(_page, db), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(LatencyMiddleware)
