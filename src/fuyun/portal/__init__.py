"""The self-service portal and operator console: server-rendered pages over the services.

Pages call :mod:`fuyun.services` in-process with the signed-in user's principal, so the
portal enforces exactly what the API enforces (roles, tenant scoping, 404 for other
tenants' objects). Every asset is served by fuyun itself (closed networks, no CDN);
JavaScript only enhances pages that work without it.

:func:`install` is the one hook the API application calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from fuyun.portal import (
    routes_account,
    routes_activity,
    routes_auth,
    routes_home,
    routes_leaks,
    routes_migrations,
    routes_networks,
    routes_ops,
    routes_plan,
    routes_policy,
    routes_qos,
    routes_tenants,
    routes_traffic,
    routes_vms,
)
from fuyun.portal.config import PortalConfig
from fuyun.portal.rendering import STATIC_DIR, PortalRoute, http_error_page

router = APIRouter(route_class=PortalRoute, include_in_schema=False)
for _module in (
    routes_auth,
    routes_home,
    routes_vms,
    routes_networks,
    routes_leaks,
    routes_policy,
    routes_qos,
    routes_activity,
    routes_account,
    routes_ops,
    routes_plan,
    routes_migrations,
    routes_tenants,
    routes_traffic,
):
    router.include_router(_module.router)


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # an included router (FastAPI)
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def page_paths() -> list[str]:
    """Every path the portal answers a ``GET`` on, as its routers declare them.

    The benchmark and the browser tests compare their page lists with this, so a page
    added later cannot go unmeasured or untested.
    """
    return sorted({r.path for r in _routes(router.routes) if "GET" in (r.methods or ())})


def install(app: FastAPI, config: PortalConfig | None = None) -> None:
    """Mount the portal at ``/`` and its assets at ``/static`` on ``app``."""
    config = config or PortalConfig.from_env()
    app.state.portal_config = config
    app.state.html_error = http_error_page
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="portal-static")
