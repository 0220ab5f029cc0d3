"""A tenant's users and API tokens (tenant-admins manage them; members see their own tokens).

A new token's secret is shown once, in the answer to the POST that made it (never
stored, never redirected through a URL or cookie), with ``Cache-Control: no-store``.
Portal sessions are login tokens, so they appear here too and can be revoked.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.enums import Role
from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.portal.forms import FormState, blank, optional_int
from fuyun.portal.options import tenant_options
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import identity, inventory
from fuyun.services.identity import IssuedToken
from fuyun.store.models import Tenant

router = APIRouter(route_class=PortalRoute)
USER_FIELDS = ("username", "role", "password", "tenant_id")
TOKEN_FIELDS = ("name", "expires_days", "user_id")
TENANT_ROLES = [(r.value, r.value) for r in (Role.TENANT_MEMBER, Role.TENANT_ADMIN, Role.VIEWER)]
PAGE = 100


def _uuid(raw: str, field: str) -> uuid.UUID | None:
    if not raw.strip():
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise InvalidInput("choose one from the list", field=field) from None


def _users_page(request: Request, visitor: Visitor, form: FormState, cursor: str = "") -> Response:
    ctx, who = context(request), visitor.principal
    page = identity.list_users(ctx.db, who, limit=PAGE, cursor=cursor or None)
    return render(
        request,
        "users.html",
        status=form.status,
        form=form,
        page=page,
        roles=TENANT_ROLES + ([(Role.OPERATOR.value, "operator")] if who.is_operator else []),
        tenants=tenant_options(ctx.db, who) if who.is_operator else [],
        owners=inventory.names_of(ctx.db, Tenant, [u.tenant_id for u in page.items]),
        may_manage=who.is_operator or who.role is Role.TENANT_ADMIN,
    )


@router.get("/account/users")
def user_list(request: Request, visitor: Reader, cursor: str = "") -> Response:
    form = blank(USER_FIELDS, role=Role.TENANT_MEMBER.value)
    return _users_page(request, visitor, form, cursor)


@router.post("/account/users")
def user_create(
    request: Request,
    visitor: Writer,
    username: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    tenant_id: Annotated[str, Form()] = "",
) -> Response:
    form = FormState(USER_FIELDS, values=dict(username=username, role=role, tenant_id=tenant_id))
    try:
        try:
            chosen = Role(role)
        except ValueError:
            raise InvalidInput("choose a role from the list", field="role") from None
        user = identity.create_user(
            context(request).db,
            visitor.principal,
            username=username.strip(),
            role=chosen,
            tenant_id=_uuid(tenant_id, "tenant_id"),
            password=password or None,
        )
    except FuyunError as exc:
        return _users_page(request, visitor, form.fail(exc))
    return redirect("/account/users", f"User {user.username} created.")


@router.post("/account/users/{user_id}/{verb}")
def user_change(request: Request, visitor: Writer, user_id: uuid.UUID, verb: str) -> Response:
    ctx, who = context(request), visitor.principal
    user = identity.get_user(ctx.db, who, user_id)
    try:
        if verb == "delete":
            identity.delete_user(ctx.db, who, user_id)
            return redirect("/account/users", f"User {user.username} deleted.")
        if verb not in ("disable", "enable"):
            raise InvalidInput("unknown action", field="verb")
        identity.update_user(ctx.db, who, user_id, disabled=verb == "disable")
    except FuyunError as exc:
        return _users_page(request, visitor, blank(USER_FIELDS).fail(exc))
    return redirect("/account/users", f"User {user.username} {verb}d.")


def _tokens_page(
    request: Request,
    visitor: Visitor,
    form: FormState,
    issued: IssuedToken | None = None,
    cursor: str = "",
) -> Response:
    ctx, who = context(request), visitor.principal
    page = identity.list_tokens(ctx.db, who, limit=PAGE, cursor=cursor or None)
    manage = who.is_operator or who.role is Role.TENANT_ADMIN
    users = identity.list_users(ctx.db, who, limit=1000).items if manage else []
    owners = {u.id: u.username for u in users}
    if who.user_id is not None:
        owners[who.user_id] = who.username
    return render(
        request,
        "tokens.html",
        status=201 if issued else form.status,
        form=form,
        page=page,
        issued=issued,
        session_token=visitor.token_id,
        owners=owners,
        users=[("", f"me ({who.username})")]
        + [(str(u.id), u.username) for u in users if u.id != who.user_id],
    )


@router.get("/account/tokens")
def token_list(request: Request, visitor: Reader, cursor: str = "") -> Response:
    return _tokens_page(request, visitor, blank(TOKEN_FIELDS, expires_days="90"), cursor=cursor)


@router.post("/account/tokens")
def token_create(
    request: Request,
    visitor: Writer,
    name: Annotated[str, Form()] = "",
    expires_days: Annotated[str, Form()] = "",
    user_id: Annotated[str, Form()] = "",
) -> Response:
    form = FormState(
        TOKEN_FIELDS,
        values=dict(name=name, expires_days=expires_days, user_id=user_id),
        aliases={"expires_in_s": "expires_days"},
    )
    try:
        days = optional_int(expires_days, "expires_days", low=1, high=3650)
        issued = identity.create_token(
            context(request).db,
            visitor.principal,
            user_id=_uuid(user_id, "user_id"),
            name=name.strip(),
            expires_in_s=days * 86400 if days else None,
        )
    except FuyunError as exc:
        return _tokens_page(request, visitor, form.fail(exc))
    return _tokens_page(request, visitor, blank(TOKEN_FIELDS, expires_days="90"), issued)


@router.post("/account/tokens/{token_id}/revoke")
def token_revoke(request: Request, visitor: Writer, token_id: uuid.UUID) -> Response:
    token = identity.revoke_token(context(request).db, visitor.principal, token_id)
    if token.id == visitor.token_id:
        return redirect("/signin", "You revoked this session's token and are signed out.")
    return redirect("/account/tokens", f"Token {token.prefix}… revoked.")
