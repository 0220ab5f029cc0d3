"""Portal sessions, CSRF tokens, and the portal's view of the application context.

A sign-in mints a short-lived *login API token* (``identity.login``) and the session
cookie carries it (``<token id>.<secret>``, HttpOnly, SameSite=Lax). Why a token and
not a signed cookie: the store already keeps tokens as SHA-256 digests with an expiry
and a revocation time, so a session is server-side for free — sign-out revokes it,
disabling the user ends it at once, an operator can revoke it like any token, and
several server processes share it with no shared secret to distribute.

CSRF: every form carries ``HMAC-SHA256(session secret, "fuyun-csrf")``. Only a page
that can read the HttpOnly session can know it, so a cross-site form cannot. Before
sign-in (the sign-in form itself) a random pre-session cookie is echoed in the form
(double submit). A POST whose ``Origin`` names another host is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request

from fuyun.config import Settings
from fuyun.domain.errors import Unauthenticated
from fuyun.services.identity import authenticate
from fuyun.services.networks import Networking
from fuyun.services.principal import Principal
from fuyun.services.runtime import Runtime
from fuyun.services.signin_limit import SignInLimiter
from fuyun.store.engine import Database

COOKIE = "fuyun_session"
PRE_COOKIE = "fuyun_presession"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class PortalContext(Protocol):
    """What the portal needs from the app (``app.state.ctx``); the API's AppContext fits.

    A protocol rather than an import keeps the portal independent of ``fuyun.api``,
    which mounts it.
    """

    settings: Settings
    db: Database
    runtime: Runtime
    signin_limiter: SignInLimiter

    @property
    def networking(self) -> Networking: ...


class SignInRequired(Exception):
    """No valid session: the route class answers with a redirect to the sign-in page."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token (or from another site)."""


@dataclass(frozen=True)
class Visitor:
    principal: Principal
    token_id: uuid.UUID
    secret: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.secret)


def csrf_for(secret: str) -> str:
    return hmac.new(secret.encode(), b"fuyun-csrf", hashlib.sha256).hexdigest()


def new_presession() -> str:
    return secrets.token_urlsafe(24)


def context(request: Request) -> PortalContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def cookie_value(token_id: uuid.UUID, secret: str) -> str:
    return f"{token_id}.{secret}"


def visitor_of(request: Request) -> Visitor | None:
    """The signed-in visitor, or None; checked against the store once per request."""
    if hasattr(request.state, "visitor"):
        return request.state.visitor  # type: ignore[no-any-return]
    visitor = None
    raw = request.cookies.get(COOKIE, "")
    token_id, _, secret = raw.partition(".")
    if secret:
        try:
            principal = authenticate(context(request).db, secret)
            visitor = Visitor(principal, uuid.UUID(token_id), secret)
        except (Unauthenticated, ValueError):
            visitor = None
    request.state.visitor = visitor
    return visitor


def signed_in(request: Request) -> Visitor:
    visitor = visitor_of(request)
    if visitor is None:
        raise SignInRequired
    return visitor


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or a same-origin request that did not send one
        return True
    if origin == "null":  # an opaque origin: a sandboxed frame or a privacy redirect
        return False
    return urlsplit(origin).netloc == request.headers.get("host", "")


def checked(
    request: Request,
    visitor: Annotated[Visitor, Depends(signed_in)],
    csrf: Annotated[str, Form()] = "",
) -> Visitor:
    """A signed-in visitor whose POST carries the session's CSRF token (form or header)."""
    sent = csrf or request.headers.get(CSRF_HEADER, "")
    if not (sent and hmac.compare_digest(sent, visitor.csrf) and same_origin(request)):
        raise CsrfRefused
    return visitor


Reader = Annotated[Visitor, Depends(signed_in)]
Writer = Annotated[Visitor, Depends(checked)]
