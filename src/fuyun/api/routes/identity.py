"""Sign-in, API tokens and users."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit, page_of
from fuyun.api.schemas import (
    ErrorResponse,
    ListOf,
    LoginIn,
    TokenCreate,
    TokenIssued,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from fuyun.services import identity
from fuyun.services.identity import IssuedToken

router = APIRouter(responses=ERRORS)


def _issued(issued: IssuedToken) -> TokenIssued:
    return TokenIssued(**TokenPublic.model_validate(issued.token).model_dump(), token=issued.secret)


@router.post(
    "/auth/login",
    response_model=TokenIssued,
    tags=["tokens"],
    status_code=status.HTTP_201_CREATED,
    responses={429: {"model": ErrorResponse, "description": "too many failed sign-ins"}},
)
def login(ctx: Ctx, body: LoginIn, request: Request) -> TokenIssued:
    """Exchange a username and password for a short-lived API token.

    Failed attempts count against the account and the client address together
    with the portal's sign-in form: over the budget, 429 with ``Retry-After``.
    """
    return _issued(
        identity.login(
            ctx.db,
            username=body.username,
            password=body.password,
            ttl_s=ctx.settings.login_token_ttl_s,
            address=request.client.host if request.client else "unknown",
            limiter=ctx.signin_limiter,
        )
    )


@router.get("/tokens", response_model=ListOf[TokenPublic], tags=["tokens"])
def list_tokens(ctx: Ctx, who: Caller, limit: Limit = None, cursor: Cursor = None) -> dict:
    return page_of(identity.list_tokens(ctx.db, who, limit=limit, cursor=cursor), TokenPublic)


@router.post(
    "/tokens", response_model=TokenIssued, tags=["tokens"], status_code=status.HTTP_201_CREATED
)
def create_token(ctx: Ctx, who: Caller, body: TokenCreate) -> TokenIssued:
    """Mint a token. The secret is in this response only; only its hash is kept."""
    return _issued(
        identity.create_token(
            ctx.db, who, user_id=body.user_id, name=body.name, expires_in_s=body.expires_in_s
        )
    )


@router.delete("/tokens/{token_id}", response_model=TokenPublic, tags=["tokens"])
def revoke_token(ctx: Ctx, who: Caller, token_id: uuid.UUID) -> TokenPublic:
    return TokenPublic.model_validate(identity.revoke_token(ctx.db, who, token_id))


@router.get("/users", response_model=ListOf[UserPublic], tags=["users"])
def list_users(
    ctx: Ctx,
    who: Caller,
    tenant_id: uuid.UUID | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict:
    return page_of(
        identity.list_users(ctx.db, who, tenant_id=tenant_id, limit=limit, cursor=cursor),
        UserPublic,
    )


@router.post(
    "/users", response_model=UserPublic, tags=["users"], status_code=status.HTTP_201_CREATED
)
def create_user(ctx: Ctx, who: Caller, body: UserCreate) -> UserPublic:
    return UserPublic.model_validate(
        identity.create_user(
            ctx.db,
            who,
            username=body.username,
            role=body.role,
            tenant_id=body.tenant_id,
            password=body.password,
        )
    )


@router.get("/users/{user_id}", response_model=UserPublic, tags=["users"])
def get_user(ctx: Ctx, who: Caller, user_id: uuid.UUID) -> UserPublic:
    return UserPublic.model_validate(identity.get_user(ctx.db, who, user_id))


@router.patch("/users/{user_id}", response_model=UserPublic, tags=["users"])
def update_user(ctx: Ctx, who: Caller, user_id: uuid.UUID, body: UserUpdate) -> UserPublic:
    return UserPublic.model_validate(
        identity.update_user(
            ctx.db, who, user_id, role=body.role, password=body.password, disabled=body.disabled
        )
    )


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["users"])
def delete_user(ctx: Ctx, who: Caller, user_id: uuid.UUID) -> None:
    identity.delete_user(ctx.db, who, user_id)
