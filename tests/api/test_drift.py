"""Drift through the API, with the fake hypervisor changed behind the store's back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fuyun.drivers.compute import InstanceSpec
from fuyun.drivers.compute.base import PowerState
from tests.api.conftest import Api, TenantAccount

Tenant = Callable[..., TenantAccount]


def _one_vm(api: Api, make_tenant: Tenant) -> tuple[TenantAccount, dict[str, Any], str]:
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/vms", headers=acme.headers, json={"name": "w", "flavor": "s1.small"}
    )
    assert r.status_code == 201, r.text
    vm = api.client.get(f"/api/v1/vms/{r.json()['items'][0]['id']}", headers=api.op).json()
    host = api.client.get(f"/api/v1/hosts/{vm['host_id']}", headers=api.op).json()["name"]
    return acme, vm, host


def _drift(api: Api, **params: str) -> list[dict[str, Any]]:
    r = api.client.get("/api/v1/drift", headers=api.op, params=params)
    assert r.status_code == 200, r.text
    assert r.json()["compute_driver"] == "fake"
    return r.json()["items"]


def test_no_drift_when_the_hypervisor_obeys(api: Api, make_tenant: Tenant) -> None:
    _one_vm(api, make_tenant)
    assert _drift(api) == []


def test_a_vm_that_died_is_reported_and_repaired(api: Api, make_tenant: Tenant) -> None:
    _, vm, host = _one_vm(api, make_tenant)
    api.driver.stop(host, uuid.UUID(vm["id"]))
    [d] = _drift(api)
    assert (d["kind"], d["store_state"], d["observed"], d["host"]) == (
        "died", "active", "stopped", host,
    )  # fmt: skip
    assert d["actions"] == ["repair", "adopt"]
    r = api.client.post(
        "/api/v1/drift/repair", headers=api.op, json={"host": host, "vm_id": vm["id"]}
    )
    assert r.status_code == 200, r.text
    status = api.driver.status(host, uuid.UUID(vm["id"]))
    assert status is not None and status.power is PowerState.RUNNING
    assert _drift(api) == []
    # Repairing what is no longer drift is a conflict, not a silent success.
    r = api.client.post(
        "/api/v1/drift/repair", headers=api.op, json={"host": host, "vm_id": vm["id"]}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_drift"


def test_adopting_a_died_vm_records_it_stopped(api: Api, make_tenant: Tenant) -> None:
    _, vm, host = _one_vm(api, make_tenant)
    api.driver.stop(host, uuid.UUID(vm["id"]))
    r = api.client.post(
        "/api/v1/drift/adopt", headers=api.op, json={"host": host, "vm_id": vm["id"]}
    )
    assert r.status_code == 200, r.text
    assert api.client.get(f"/api/v1/vms/{vm['id']}", headers=api.op).json()["state"] == "stopped"
    assert _drift(api, host=host) == []


def test_a_missing_instance_is_created_again(api: Api, make_tenant: Tenant) -> None:
    _, vm, host = _one_vm(api, make_tenant)
    api.driver.delete(host, uuid.UUID(vm["id"]))
    [d] = _drift(api)
    assert (d["kind"], d["observed"], d["actions"]) == ("missing", None, ["repair"])
    r = api.client.post(
        "/api/v1/drift/adopt", headers=api.op, json={"host": host, "vm_id": vm["id"]}
    )
    assert r.status_code == 409 and r.json()["error"]["field"] == "action"
    r = api.client.post(
        "/api/v1/drift/repair", headers=api.op, json={"host": host, "vm_id": vm["id"]}
    )
    assert r.status_code == 200, r.text
    assert api.driver.status(host, uuid.UUID(vm["id"])) is not None


def test_an_unknown_instance_is_adopted_into_a_tenant_or_removed(
    api: Api, make_tenant: Tenant
) -> None:
    acme, _, host = _one_vm(api, make_tenant)
    flavor = next(
        f for f in api.client.get("/api/v1/flavors", headers=api.op).json()["items"]
        if f["name"] == "s1.small"
    )  # fmt: skip
    stray, other = uuid.uuid4(), uuid.uuid4()
    for vm_id in (stray, other):
        api.driver.create(
            InstanceSpec(vm_id, "by-hand", host, flavor["vcpus"], flavor["ram_mb"], 1, "x")
        )
    kinds = {(d["vm_id"], d["kind"]) for d in _drift(api, host=host)}
    assert kinds == {(str(stray), "unknown"), (str(other), "unknown")}
    body = {"host": host, "vm_id": str(stray)}
    r = api.client.post("/api/v1/drift/adopt", headers=api.op, json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "tenant"
    r = api.client.post("/api/v1/drift/adopt", headers=api.op, json={**body, "tenant": "acme"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "flavor"
    r = api.client.post(
        "/api/v1/drift/adopt", headers=api.op, json={**body, "tenant": "acme", "flavor": "s1.large"}
    )
    assert r.status_code in (404, 422) and r.json()["error"]["field"] == "flavor"
    r = api.client.post(
        "/api/v1/drift/adopt", headers=api.op, json={**body, "tenant": "acme", "flavor": "s1.small"}
    )
    assert r.status_code == 200, r.text
    adopted = api.client.get(f"/api/v1/vms/{stray}", headers=acme.headers).json()
    assert adopted["state"] == "active" and adopted["tenant_id"] == acme.id
    r = api.client.post(
        "/api/v1/drift/repair", headers=api.op, json={"host": host, "vm_id": str(other)}
    )
    assert r.status_code == 200, r.text
    assert api.driver.status(host, other) is None
    assert _drift(api, host=host) == []
    events = api.client.get(
        "/api/v1/audit-events", headers=api.op, params={"action": "drift.adopt"}
    ).json()["items"]
    assert {e["result"] for e in events} == {"success", "failure"}


def test_drift_is_for_operators(api: Api, make_tenant: Tenant) -> None:
    acme, vm, host = _one_vm(api, make_tenant)
    assert api.client.get("/api/v1/drift", headers=acme.headers).status_code == 403
    r = api.client.post(
        "/api/v1/drift/repair", headers=acme.headers, json={"host": host, "vm_id": vm["id"]}
    )
    assert r.status_code == 403
    r = api.client.get("/api/v1/drift", headers=api.op, params={"host": "no-such-host"})
    assert r.status_code == 404 and r.json()["error"]["field"] == "host"
