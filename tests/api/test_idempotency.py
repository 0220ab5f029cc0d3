"""Idempotency keys: a retried mutation answers the first response and happens once."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, update

from fuyun.store.models import IdempotencyKey, Tenant, Vm
from fuyun.store.types import utcnow
from tests.api.conftest import Api, TenantAccount


def _count(api: Api, model: type, *where: object) -> int:
    with api.db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_retried_post_returns_the_first_answer_and_creates_once(api: Api) -> None:
    headers = {**api.op, "Idempotency-Key": "tenant-create-1"}
    first = api.client.post("/api/v1/tenants", headers=headers, json={"name": "once"})
    again = api.client.post("/api/v1/tenants", headers=headers, json={"name": "once"})
    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _count(api, Tenant, Tenant.name == "once") == 1


def test_without_a_key_a_retry_is_a_new_request(api: Api) -> None:
    first = api.client.post("/api/v1/tenants", headers=api.op, json={"name": "twice"})
    again = api.client.post("/api/v1/tenants", headers=api.op, json={"name": "twice"})
    assert first.status_code == 201
    assert again.status_code == 409  # the name is taken: it really ran again


def test_a_refusal_is_replayed_too(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    t = make_tenant("tiny", vms=1)
    headers = {**t.headers, "Idempotency-Key": "k-refused"}
    body = {"name": "big", "flavor": "s1.small", "count": 5}
    first = api.client.post("/api/v1/vms", headers=headers, json=body)
    assert first.status_code == 409, first.text
    again = api.client.post("/api/v1/vms", headers=headers, json=body)
    assert (again.status_code, again.json()) == (409, first.json())


def test_the_same_key_for_another_request_is_refused(api: Api) -> None:
    headers = {**api.op, "Idempotency-Key": "reused"}
    assert (
        api.client.post("/api/v1/tenants", headers=headers, json={"name": "a1"}).status_code == 201
    )
    r = api.client.post("/api/v1/tenants", headers=headers, json={"name": "a2"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert r.json()["error"]["field"] == "Idempotency-Key"
    assert _count(api, Tenant, Tenant.name == "a2") == 0


def test_keys_are_scoped_per_principal(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    a, b = make_tenant("alpha"), make_tenant("bravo")
    body = {"name": "web", "flavor": "s1.small"}
    ra = api.client.post("/api/v1/vms", headers={**a.headers, "Idempotency-Key": "same"}, json=body)
    rb = api.client.post("/api/v1/vms", headers={**b.headers, "Idempotency-Key": "same"}, json=body)
    assert ra.status_code == rb.status_code == 201, (ra.text, rb.text)
    assert ra.json()["items"][0]["id"] != rb.json()["items"][0]["id"]
    assert "idempotent-replayed" not in rb.headers


def test_an_expired_key_is_free_again(api: Api) -> None:
    headers = {**api.op, "Idempotency-Key": "short-lived"}
    assert (
        api.client.post("/api/v1/tenants", headers=headers, json={"name": "e1"}).status_code == 201
    )
    with api.db.write_session() as s:
        s.execute(update(IdempotencyKey).values(expires_at=utcnow()))
    r = api.client.post("/api/v1/tenants", headers=headers, json={"name": "e1"})
    assert r.status_code == 409  # ran again: the name is now taken
    assert "idempotent-replayed" not in r.headers


def test_a_server_error_is_not_stored_so_a_retry_runs(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    t = make_tenant("flaky")
    headers = {**t.headers, "Idempotency-Key": "boot-fails-once"}
    body = {"name": "vm", "flavor": "s1.small"}
    api.driver.fail_on["create"] = "hypervisor unreachable"
    first = api.client.post("/api/v1/vms", headers=headers, json=body)
    assert first.status_code == 502, first.text
    del api.driver.fail_on["create"]
    again = api.client.post("/api/v1/vms", headers=headers, json=body)
    assert again.status_code == 201, again.text
    assert _count(api, Vm, Vm.name == "vm", Vm.state == "active") == 1


def test_a_malformed_key_is_422_naming_the_header(api: Api) -> None:
    for key in ("x" * 256, "has space"):
        r = api.client.post(
            "/api/v1/tenants", headers={**api.op, "Idempotency-Key": key}, json={"name": "bad"}
        )
        assert r.status_code == 422, key
        assert r.json()["error"]["field"] == "Idempotency-Key"
    assert _count(api, Tenant, Tenant.name == "bad") == 0


def test_reads_and_unauthenticated_calls_pass_through(api: Api) -> None:
    r = api.client.get("/api/v1/tenants", headers={**api.op, "Idempotency-Key": "read"})
    assert r.status_code == 200
    r = api.client.post("/api/v1/tenants", headers={"Idempotency-Key": "anon"}, json={"name": "x"})
    assert r.status_code == 401
    assert _count(api, IdempotencyKey) == 0
