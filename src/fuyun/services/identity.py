"""Users, API tokens and authentication.

Tokens are random secrets shown once; only their SHA-256 digest is stored, so a
leaked database yields no usable credential. Expired, revoked and disabled all
look the same to the caller: 401.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.domain.enums import Role
from fuyun.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from fuyun.services.audit import mutation, record_refusal
from fuyun.services.pagination import Page, paginate
from fuyun.services.passwords import hash_password, verify_password
from fuyun.services.principal import Principal
from fuyun.services.signin_limit import SignInLimiter
from fuyun.store.engine import Database
from fuyun.store.models import ApiToken, Tenant, User
from fuyun.store.types import utcnow

TOKEN_PREFIX = "fyt_"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
MAX_TOKEN_TTL = timedelta(days=3650)


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(db: Database, secret: str) -> Principal:
    """Resolve a bearer token to its principal, or raise :class:`Unauthenticated`."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise Unauthenticated("invalid token")
    with db.read_session() as session:
        row = session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == digest(secret))
        ).first()
    if row is None:
        raise Unauthenticated("invalid token")
    token, user = row
    now = utcnow()
    if token.revoked_at is not None or user.disabled:
        raise Unauthenticated("token revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated("token expired")
    return principal_of(user)


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id, username=user.username, role=Role(user.role), tenant_id=user.tenant_id
    )


def _validate_user_fields(username: str | None, password: str | None) -> None:
    if username is not None and not USERNAME.match(username):
        raise InvalidInput(
            "username must be 1-64 lowercase letters, digits or ._@- and start with a letter"
            " or digit",
            field="username",
        )
    if password is not None and not (MIN_PASSWORD <= len(password) <= 256):
        raise InvalidInput(f"password must be {MIN_PASSWORD}-256 characters", field="password")


def _check_role_for_tenant(principal: Principal, role: Role, tenant_id: uuid.UUID | None) -> None:
    if role is Role.OPERATOR:
        principal.require_operator()
        if tenant_id is not None:
            raise InvalidInput("an operator belongs to no tenant", field="tenant_id")
        return
    if role in (Role.TENANT_ADMIN, Role.TENANT_MEMBER) and tenant_id is None:
        raise InvalidInput(f"a {role} needs a tenant", field="tenant_id")
    if tenant_id is None:
        principal.require_operator()
    else:
        principal.require_tenant_admin(tenant_id)


def create_user(
    db: Database,
    principal: Principal,
    *,
    username: str,
    role: Role,
    tenant_id: uuid.UUID | None,
    password: str | None,
) -> User:
    if tenant_id is None and not principal.is_operator:
        tenant_id = principal.tenant_id
    with mutation(db, principal, "user.create", "user", tenant_id=tenant_id) as m:
        _validate_user_fields(username, password)
        if tenant_id is not None and not (
            principal.may_see_tenant(tenant_id) and m.session.get(Tenant, tenant_id)
        ):
            raise NotFound("no such tenant", field="tenant_id")
        _check_role_for_tenant(principal, role, tenant_id)
        if m.session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict(f"username '{username}' is taken", field="username")
        user = User(
            username=username,
            role=role.value,
            tenant_id=tenant_id,
            password_hash=hash_password(password) if password else None,
        )
        m.session.add(user)
        m.session.flush()
        m.object_id = str(user.id)
        m.detail = {"username": username, "role": role.value}
        return user


def _visible_user(session: Session, principal: Principal, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or not (
        principal.may_see_tenant(user.tenant_id) or user.id == principal.user_id
    ):
        raise NotFound("no such user", field="user_id")
    return user


def get_user(db: Database, principal: Principal, user_id: uuid.UUID) -> User:
    with db.read_session() as session:
        return _visible_user(session, principal, user_id)


def list_users(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[User]:
    stmt = principal.scope(select(User), User.tenant_id)
    if tenant_id is not None:
        stmt = stmt.where(User.tenant_id == tenant_id)
    with db.read_session() as session:
        return paginate(
            session, stmt, sort=User.username, id_column=User.id, limit=limit, cursor=cursor
        )


def update_user(
    db: Database,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    role: Role | None = None,
    password: str | None = None,
    disabled: bool | None = None,
) -> User:
    with mutation(db, principal, "user.update", "user", object_id=user_id) as m:
        user = _visible_user(m.session, principal, user_id)
        m.tenant_id = user.tenant_id
        is_self = user.id == principal.user_id
        if role is not None or disabled is not None or not is_self:
            if user.role == Role.OPERATOR.value or user.tenant_id is None:
                principal.require_operator()
            else:
                principal.require_tenant_admin(user.tenant_id)
        _validate_user_fields(None, password)
        if role is not None:
            _check_role_for_tenant(principal, role, user.tenant_id)
            user.role = role.value
        if password is not None:
            user.password_hash = hash_password(password)
        if disabled is not None:
            if is_self and disabled:
                raise InvalidInput("you cannot disable yourself", field="disabled")
            user.disabled = disabled
        m.detail = {
            "role": user.role,
            "disabled": user.disabled,
            "password_changed": password is not None,
        }
        return user


def delete_user(db: Database, principal: Principal, user_id: uuid.UUID) -> None:
    with mutation(db, principal, "user.delete", "user", object_id=user_id) as m:
        user = _visible_user(m.session, principal, user_id)
        m.tenant_id = user.tenant_id
        if user.tenant_id is None:
            principal.require_operator()
        else:
            principal.require_tenant_admin(user.tenant_id)
        if user.id == principal.user_id:
            raise InvalidInput("you cannot delete yourself", field="user_id")
        m.session.delete(user)


def _mint(session: Session, user: User, name: str, expires_at: datetime | None) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=digest(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        created_at=utcnow(),
        expires_at=expires_at,
        revoked_at=None,
        last_used_at=None,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token=token, secret=secret)


def create_token(
    db: Database,
    principal: Principal,
    *,
    user_id: uuid.UUID | None = None,
    name: str = "",
    expires_in_s: int | None = None,
) -> IssuedToken:
    """Mint a token for the caller, or (admins) for a user they manage."""
    target = user_id or principal.user_id
    if target is None:
        raise InvalidInput("user_id is required", field="user_id")
    with mutation(db, principal, "token.create", "token") as m:
        user = _visible_user(m.session, principal, target)
        m.tenant_id = user.tenant_id
        if user.id != principal.user_id:
            if user.tenant_id is None:
                principal.require_operator()
            else:
                principal.require_tenant_admin(user.tenant_id)
        if len(name) > 64:
            raise InvalidInput("name is longer than 64 characters", field="name")
        expires_at = None
        if expires_in_s is not None:
            if not 1 <= expires_in_s <= MAX_TOKEN_TTL.total_seconds():
                raise InvalidInput(
                    "expires_in_s must be between 1 s and 10 years", field="expires_in_s"
                )
            expires_at = utcnow() + timedelta(seconds=expires_in_s)
        issued = _mint(m.session, user, name, expires_at)
        m.object_id = str(issued.token.id)
        m.detail = {"user": user.username, "name": name}
        return issued


def login(
    db: Database,
    *,
    username: str,
    password: str,
    ttl_s: int,
    address: str = "unknown",
    limiter: SignInLimiter | None = None,
) -> IssuedToken:
    """Exchange a username and password for a short-lived token.

    With a ``limiter`` (the API and the portal pass the process's one), an account
    or address over its failure budget is refused before the password is checked.
    Every wrong password is audited with the client address: under the user's tenant
    when the account exists (so its tenant-admin sees attacks on it), else for the
    operators only. The caller is never told whether the username exists.
    """
    account = username.strip().lower()[:64]
    if limiter is not None:
        wait = limiter.retry_after(account, address)
        if wait is not None:
            raise TooManyAttempts(
                "too many failed sign-ins for this account or from this address;"
                f" retry in {math.ceil(wait)} s",
                retry_after_s=wait,
            )
    with db.read_session() as session:
        user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        if limiter is not None:
            limiter.failed(account, address)
        reason = "unknown user" if user is None else "disabled" if ok else "wrong password"
        record_refusal(
            db,
            actor=account,
            actor_id=user.id if user else None,
            tenant_id=user.tenant_id if user else None,
            action="token.login",
            object_type="token",
            detail={"error": "unauthenticated", "reason": reason, "address": address},
        )
        raise Unauthenticated("wrong username or password")
    if limiter is not None:
        limiter.succeeded(account)
    principal = principal_of(user)
    with mutation(db, principal, "token.login", "token") as m:
        issued = _mint(m.session, user, "login", utcnow() + timedelta(seconds=ttl_s))
        m.object_id = str(issued.token.id)
        return issued


def list_tokens(
    db: Database, principal: Principal, *, limit: int | None = None, cursor: str | None = None
) -> Page[ApiToken]:
    """Own tokens; a tenant-admin also sees its tenant's, an operator everyone's."""
    stmt = select(ApiToken).join(User, User.id == ApiToken.user_id)
    if principal.is_operator and principal.tenant_id is None:
        pass
    elif principal.role is Role.TENANT_ADMIN:
        stmt = stmt.where(User.tenant_id == principal.tenant_id)
    else:
        stmt = stmt.where(ApiToken.user_id == principal.user_id)
    with db.read_session() as session:
        return paginate(
            session,
            stmt,
            sort=ApiToken.created_at,
            id_column=ApiToken.id,
            limit=limit,
            cursor=cursor,
            descending=True,
        )


def revoke_token(db: Database, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    with mutation(db, principal, "token.revoke", "token", object_id=token_id) as m:
        token = m.session.get(ApiToken, token_id)
        user = m.session.get(User, token.user_id) if token else None
        if token is None or user is None:
            raise NotFound("no such token", field="token_id")
        m.tenant_id = user.tenant_id
        if user.id != principal.user_id:
            if not principal.may_see_tenant(user.tenant_id):
                raise NotFound("no such token", field="token_id")
            if user.tenant_id is None:
                principal.require_operator()
            else:
                try:
                    principal.require_tenant_admin(user.tenant_id)
                except Forbidden:
                    raise NotFound("no such token", field="token_id") from None
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        return token
