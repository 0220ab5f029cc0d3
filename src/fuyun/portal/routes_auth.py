"""Sign-in and sign-out.

Failed sign-ins are limited per account and per client address *before* the
password is checked (429 with ``Retry-After``), so guessing costs the guesser. A
right password clears the account's count. The message never says whether the
username exists.
"""

from __future__ import annotations

import contextlib
import hmac
import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.errors import FuyunError, TooManyAttempts, Unauthenticated
from fuyun.portal.forms import blank
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import (
    COOKIE,
    PRE_COOKIE,
    CsrfRefused,
    Writer,
    context,
    cookie_value,
    new_presession,
    same_origin,
    visitor_of,
)
from fuyun.services import identity

router = APIRouter(route_class=PortalRoute)
MAX_PASSWORD = 256


def safe_next(target: str) -> str:
    """Only a path on this site: never ``//evil`` or ``https://…`` (no open redirect)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _secure(request: Request) -> bool:
    mode = request.app.state.portal_config.secure_cookies
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


@router.get("/signin")
def signin_page(request: Request, next: str = "/") -> Response:
    if visitor_of(request) is not None:
        return redirect(safe_next(next))
    pre = request.cookies.get(PRE_COOKIE) or new_presession()
    response = render(
        request,
        "signin.html",
        presession=pre,
        form=blank(("username", "password")),
        next=safe_next(next),
    )
    response.set_cookie(
        PRE_COOKIE, pre, httponly=True, samesite="strict", secure=_secure(request), path="/"
    )
    return response


@router.post("/signin")
def signin(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    pre = request.cookies.get(PRE_COOKIE, "")
    if not (pre and csrf and hmac.compare_digest(pre, csrf) and same_origin(request)):
        raise CsrfRefused
    ctx = context(request)
    account = username.strip().lower()[:64]
    address = request.client.host if request.client else "unknown"
    form = blank(("username", "password"), username=account)
    try:
        if not account or len(password) > MAX_PASSWORD:
            raise Unauthenticated("wrong username or password")
        issued = identity.login(
            ctx.db,
            username=account,
            password=password,
            ttl_s=ctx.settings.login_token_ttl_s,
            address=address,
            limiter=ctx.signin_limiter,
        )
    except TooManyAttempts as exc:
        minutes = max(1, math.ceil(exc.retry_after_s / 60))
        form.general = (
            "Too many failed sign-ins for this account or from your address."
            f" Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )
        return render(
            request,
            "signin.html",
            status=429,
            headers={"Retry-After": str(math.ceil(exc.retry_after_s))},
            presession=pre,
            form=form,
            next=safe_next(next),
        )
    except Unauthenticated:
        form.general = "Wrong username or password."
        return render(
            request, "signin.html", status=401, presession=pre, form=form, next=safe_next(next)
        )
    response = redirect(safe_next(next))
    response.set_cookie(
        COOKIE,
        cookie_value(issued.token.id, issued.secret),
        max_age=ctx.settings.login_token_ttl_s,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/signout")
def signout(request: Request, visitor: Writer) -> Response:
    """Revoke the session's token in the store, so the cookie is dead even if copied."""
    # Already revoked or gone: signed out either way.
    with contextlib.suppress(FuyunError):
        identity.revoke_token(context(request).db, visitor.principal, visitor.token_id)
    response = redirect("/signin", "You are signed out.")
    response.delete_cookie(COOKIE, path="/")
    return response
