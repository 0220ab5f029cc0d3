"""Typed FastAPI dependencies: the app context and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fuyun.api.context import AppContext
from fuyun.domain.errors import Unauthenticated
from fuyun.services.identity import authenticate
from fuyun.services.principal import Principal

_bearer = HTTPBearer(auto_error=False, description="an API token: `Authorization: Bearer fyt_…`")


def get_context(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token")
    principal = authenticate(get_context(request).db, credentials.credentials)
    request.state.principal = principal
    return principal


Ctx = Annotated[AppContext, Depends(get_context)]
Caller = Annotated[Principal, Depends(get_principal)]
