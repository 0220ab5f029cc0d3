"""Stored verification runs through the API: run, read back, stale after a recompile."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from fuyun.store.models import AuditEvent
from tests.api.conftest import Api, TenantAccount
from tests.api.test_policy import _stage

Tenant = Callable[..., TenantAccount]


def test_a_stored_run_is_read_back_until_the_compiled_state_changes(
    api: Api, make_tenant: Tenant
) -> None:
    acme = make_tenant("acme")
    _stage(api, acme)
    assert api.client.get("/api/v1/verify/runs/latest", headers=api.op).status_code == 404

    r = api.client.post("/api/v1/verify/runs", headers=api.op, params={"limit": 10})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["report"]["ok"] is True and run["report"]["endpoints"] == 2
    assert run["summary"]["ok"] is True and run["summary"]["leaks"] == 0
    assert run["basis"]["devices"] > 0 and run["stale"] is False
    assert run["parameters"] == {"limit": 10}

    latest = api.client.get("/api/v1/verify/runs/latest", headers=api.op).json()
    assert latest["id"] == run["id"] and latest["stale"] is False
    assert latest["report"] == run["report"]

    # Another VM recompiles the tenant's devices: the stored run no longer says "current".
    vm = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "x", "flavor": "s1.small", "networks": ["app"], "security_groups": ["web"]},
    )
    assert vm.status_code == 201, vm.text
    stale = api.client.get("/api/v1/verify/runs/latest", headers=api.op).json()
    assert stale["id"] == run["id"] and stale["stale"] is True
    assert stale["current_basis"]["generations"] > run["basis"]["generations"]

    fresh = api.client.post("/api/v1/verify/runs", headers=api.op).json()
    assert fresh["report"]["endpoints"] == 3 and fresh["stale"] is False
    assert api.client.get("/api/v1/verify/runs/latest", headers=api.op).json()["id"] == fresh["id"]

    with api.db.read_session() as s:
        actors = [
            e.actor for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "verify.run"))
        ]
    assert len(actors) == 2


def test_partners_neither_run_nor_read_verification(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    assert api.client.post("/api/v1/verify/runs", headers=acme.headers).status_code == 403
    assert api.client.get("/api/v1/verify/runs/latest", headers=acme.headers).status_code == 403
