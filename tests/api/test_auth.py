"""Tokens: hashed, shown once, expiring, revocable; sign-in by password."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from fuyun.services.identity import digest
from fuyun.store.models import ApiToken
from fuyun.store.types import utcnow
from tests.api.conftest import Api, TenantAccount


def test_requests_without_or_with_bad_token_get_401(api: Api) -> None:
    assert api.client.get("/api/v1/vms").status_code == 401
    r = api.client.get("/api/v1/vms", headers=api.as_("fyt_not-a-real-token"))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def test_only_the_hash_of_a_token_is_stored(api: Api) -> None:
    r = api.client.post("/api/v1/tokens", headers=api.op, json={"name": "ci"})
    assert r.status_code == 201
    secret = r.json()["token"]
    with api.db.read_session() as s:
        stored = s.scalar(select(ApiToken).where(ApiToken.id == uuid.UUID(r.json()["id"])))
    assert stored is not None
    assert stored.token_hash == digest(secret)
    assert secret not in (stored.token_hash, stored.prefix)
    listed = api.client.get("/api/v1/tokens", headers=api.op).json()["items"]
    assert all("token" not in t for t in listed)


def test_expired_token_is_refused(api: Api) -> None:
    r = api.client.post("/api/v1/tokens", headers=api.op, json={"expires_in_s": 3600})
    token, token_id = r.json()["token"], uuid.UUID(r.json()["id"])
    assert api.client.get("/api/v1/vms", headers=api.as_(token)).status_code == 200
    with api.db.write_session() as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = api.client.get("/api/v1/vms", headers=api.as_(token))
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


def test_revoked_token_is_refused(api: Api) -> None:
    r = api.client.post("/api/v1/tokens", headers=api.op, json={})
    token, token_id = r.json()["token"], uuid.UUID(r.json()["id"])
    assert api.client.delete(f"/api/v1/tokens/{token_id}", headers=api.op).status_code == 200
    r = api.client.get("/api/v1/vms", headers=api.as_(token))
    assert r.status_code == 401
    assert "revoked" in r.json()["error"]["message"]


def test_login_with_wrong_password_is_401(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    make_tenant("acme")
    r = api.client.post(
        "/api/v1/auth/login", json={"username": "acme-admin", "password": "wrong-password"}
    )
    assert r.status_code == 401
    r = api.client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "wrong-password"}
    )
    assert r.status_code == 401


def test_disabled_user_tokens_stop_working(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    me = api.client.get("/api/v1/users", headers=acme.headers).json()["items"][0]
    r = api.client.patch(f"/api/v1/users/{me['id']}", headers=api.op, json={"disabled": True})
    assert r.status_code == 200
    assert api.client.get("/api/v1/vms", headers=acme.headers).status_code == 401


def test_tenant_admin_manages_own_users_but_not_operators(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/users",
        headers=acme.headers,
        json={"username": "acme-dev", "role": "tenant-member", "password": "s3cret-pass"},
    )
    assert r.status_code == 201
    assert r.json()["tenant_id"] == acme.id
    r = api.client.post(
        "/api/v1/users",
        headers=acme.headers,
        json={"username": "evil-op", "role": "operator", "password": "s3cret-pass"},
    )
    assert r.status_code == 403
    member_login = api.client.post(
        "/api/v1/auth/login", json={"username": "acme-dev", "password": "s3cret-pass"}
    ).json()["token"]
    r = api.client.post(
        "/api/v1/users",
        headers=api.as_(member_login),
        json={"username": "acme-dev2", "role": "tenant-member", "password": "s3cret-pass"},
    )
    assert r.status_code == 403


def test_viewer_cannot_mutate(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme")
    api.client.post(
        "/api/v1/users",
        headers=acme.headers,
        json={"username": "acme-view", "role": "viewer", "password": "s3cret-pass"},
    )
    token = api.client.post(
        "/api/v1/auth/login", json={"username": "acme-view", "password": "s3cret-pass"}
    ).json()["token"]
    assert api.client.get("/api/v1/vms", headers=api.as_(token)).status_code == 200
    r = api.client.post(
        "/api/v1/vms", headers=api.as_(token), json={"name": "x", "flavor": "s1.small"}
    )
    assert r.status_code == 403


def test_api_login_is_throttled_per_account_before_the_password_is_checked(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    make_tenant("acme")
    wrong = {"username": "acme-admin", "password": "wrong-password"}
    for _ in range(5):
        assert api.client.post("/api/v1/auth/login", json=wrong).status_code == 401
    r = api.client.post("/api/v1/auth/login", json=wrong)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "too_many_attempts"
    assert 290 < int(r.headers["Retry-After"]) <= 300
    # The right password waits too: the budget is checked first.
    right = {"username": "acme-admin", "password": "correct-horse"}
    assert api.client.post("/api/v1/auth/login", json=right).status_code == 429
    # Another account from the same address is still under the address's budget.
    make_tenant("globex")
    ok = {"username": "globex-admin", "password": "correct-horse"}
    assert api.client.post("/api/v1/auth/login", json=ok).status_code == 201


def test_failed_logins_are_audited_with_the_address_under_the_users_tenant(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    api.client.post("/api/v1/auth/login", json={"username": "acme-admin", "password": "nope"})
    api.client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope"})
    mine = api.client.get(
        "/api/v1/audit-events", params={"action": "token.login"}, headers=acme.headers
    ).json()["items"]
    mine = [e for e in mine if e["result"] == "failure"]
    assert [e["actor"] for e in mine] == ["acme-admin"]
    assert mine[0]["detail"]["reason"] == "wrong password"
    assert mine[0]["detail"]["address"] == "testclient"
    # The made-up account is visible to operators only, never to a tenant.
    everyone = api.client.get(
        "/api/v1/audit-events", params={"action": "token.login"}, headers=api.op
    ).json()["items"]
    ghost = [e for e in everyone if e["actor"] == "ghost"]
    assert ghost and ghost[0]["detail"]["reason"] == "unknown user" and not ghost[0]["tenant_id"]
