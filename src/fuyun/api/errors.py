"""Every error leaves the API as ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
import math
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fuyun.domain.errors import FuyunError, TooManyAttempts

log = logging.getLogger("fuyun.api")


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(
        status_code=status,
        headers=headers,
        content={"error": {"code": code, "message": message, "field": field}},
    )


def _field_of(loc: tuple[object, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def install(app: FastAPI) -> None:
    @app.exception_handler(FuyunError)
    async def _fuyun(_: Request, exc: FuyunError) -> JSONResponse:
        headers = None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(math.ceil(exc.retry_after_s))}
        return error_response(exc.status, exc.code, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = _field_of(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid request"))
        if field:
            message = f"{field}: {message}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problems)"
        return error_response(422, "invalid", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # A person who mistyped a portal address gets the portal's page, not JSON.
        html_error = getattr(request.app.state, "html_error", None)
        if html_error is not None and _wants_html(request):
            return cast(Response, await html_error(request, exc.status_code))
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the server log")
