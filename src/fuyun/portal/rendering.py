"""Templates, security headers, flash messages, and errors rendered as pages.

:class:`PortalRoute` is the one place an exception becomes a page: no session
redirects to sign-in, a missing CSRF token is a 403 page, a :class:`FuyunError`
from the services (404 for another tenant's object, 403 for a role) is an error
page with its message, and a malformed path (a guessed, non-UUID id) is a 404 —
so route functions stay short and never format errors themselves.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from fuyun import __version__
from fuyun.domain.errors import FuyunError, Unauthenticated
from fuyun.portal import heat
from fuyun.portal.nav import nav_for
from fuyun.portal.session import CsrfRefused, SignInRequired, visitor_of

STATIC_DIR = Path(__file__).parent / "static"
FLASH_COOKIE = "fuyun_flash"
# Scripts and styles only from fuyun itself; no inline script, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _asset_version() -> str:
    """A digest of the static files, appended to their URLs so browsers never run stale JS."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(STATIC_DIR.glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _mib(value: int) -> str:
    return f"{value / 1024:.0f} GiB" if value >= 1024 else f"{value} MiB"


_env = Environment(
    loader=PackageLoader("fuyun.portal", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_env.filters.update(when=_when, mib=_mib, pct=heat.percent)
_env.globals.update(asset_version=_asset_version(), version=__version__, heat=heat)


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    visitor = visitor_of(request)
    raw_flash = request.cookies.get(FLASH_COOKIE)
    flash = unquote(raw_flash) if raw_flash else None
    html = _env.get_template(template).render(
        request=request,
        path=request.url.path,
        visitor=visitor,
        who=visitor.principal if visitor else None,
        # The sign-in form echoes its pre-session token; every other form the session's.
        csrf=values.pop("presession", None) or (visitor.csrf if visitor else ""),
        nav=nav_for(visitor.principal if visitor else None),
        flash=flash,
        rendered_at=datetime.now(UTC).isoformat(),
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=headers)
    secure_headers(response)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def secure_headers(response: Response) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """After a POST, see the result with a GET (and a one-shot message)."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash), max_age=60, httponly=True, samesite="lax", path="/"
        )
    return response


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, title=title, message=message)


_TITLES = {403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid request"}
CSRF_MESSAGE = (
    "This form was not sent from a fuyun page of your session (its security token is missing"
    " or stale). Go back, reload the page and try again."
)


async def _error(request: Request, status: int, title: str, message: str) -> Response:
    # Rendering may read the session from the store: keep it off the event loop.
    return await run_in_threadpool(error_page, request, status, title, message)


async def http_error_page(request: Request, status: int) -> Response:
    """The page for an address no route answers (404) or a method it does not take (405)."""
    if status == 404:
        return await _error(request, 404, "Not found", "There is no such page.")
    title = "Not allowed" if status == 405 else "Something went wrong"
    return await _error(request, status, title, "This page does not take that request.")


class PortalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            response = await self._answer(original, request)
            # Server time of the page, for browsers' devtools and the portal benchmark.
            elapsed_ms = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
            return response

        return handler

    @staticmethod
    async def _answer(
        original: Callable[[Request], Coroutine[Any, Any, Response]], request: Request
    ) -> Response:
        try:
            return await original(request)
        except (SignInRequired, Unauthenticated):
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)
        except CsrfRefused:
            return await _error(request, 403, "Form refused", CSRF_MESSAGE)
        except FuyunError as exc:
            title = _TITLES.get(exc.status, "Something went wrong")
            return await _error(request, exc.status, title, exc.message)
        except RequestValidationError as exc:
            if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
                return await _error(request, 404, "Not found", "There is no such page.")
            return await _error(request, 422, "Invalid request", str(exc.errors()[0]["msg"]))
