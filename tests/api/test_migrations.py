"""The migration API on the `small` fabric: plan, move, history, batches, site plans."""

from __future__ import annotations

import time
from typing import Any

from tests.api.conftest import Api, TenantAccount


def _setup(api: Api, make_tenant: Any) -> tuple[TenantAccount, dict[str, Any]]:
    acme = make_tenant("acme", vcpus=100, ram_mb=10**6, bandwidth_mbps=10**5)
    r = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": "web", "cidr": "10.1.0.0/24", "tenant_id": acme.id, "module": "sz1-m01"},
    )
    assert r.status_code == 201, r.text
    r = api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={
            "name": "a",
            "flavor": "s1.small",
            "tenant_id": acme.id,
            "networks": ["web"],
            "host": "sz1-m01-t01-h01",
        },
    )
    assert r.status_code == 201, r.text
    return acme, r.json()["items"][0]


def test_plan_then_migrate_keeps_addresses(api: Api, make_tenant: Any) -> None:
    _, vm = _setup(api, make_tenant)
    ports = api.client.get(f"/api/v1/ports?vm_id={vm['id']}", headers=api.op).json()["items"]
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/migration-plan", headers=api.op, json={"to": "sz1-m01-t02-h01"}
    )
    assert r.status_code == 200, r.text
    plan = r.json()
    assert (plan["scope"], plan["feasible"], plan["keeps_ip"]) == ("same-module", True, True)
    assert any("claim sz1-m01-t02 vlans 0 -> 1" in c for c in plan["changes"])
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/migrate", headers=api.op, json={"to": "sz1-m01-t02-h01"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "succeeded"
    after = api.client.get(f"/api/v1/ports?vm_id={vm['id']}", headers=api.op).json()["items"]
    assert [(p["mac"], p["ips"]) for p in after] == [(p["mac"], p["ips"]) for p in ports]
    history = api.client.get(f"/api/v1/migrations?vm_id={vm['id']}", headers=api.op).json()
    assert history["items"][0]["progress"] == 1.0
    audit = api.client.get("/api/v1/audit-events?limit=50", headers=api.op).json()["items"]
    assert any(e["action"] == "vm.migrate" and e["result"] == "success" for e in audit)


def test_migrate_without_waiting_answers_202_and_the_move_can_be_followed(
    api: Api, make_tenant: Any
) -> None:
    _, vm = _setup(api, make_tenant)
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/migrate?wait=false",
        headers=api.op,
        json={"to": "sz1-m01-t02-h01"},
    )
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["state"] == "running" and started["plan"]["target_host"] == "sz1-m01-t02-h01"
    location = r.headers["location"]
    assert location == f"/api/v1/migrations/{started['workflow_id']}"
    deadline = time.monotonic() + 30
    while True:
        move = api.client.get(location, headers=api.op).json()
        if move["state"] not in ("pending", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert move["state"] == "succeeded", move
    assert move["steps"][0]["name"] == "reserve" and move["progress"] == 1.0
    assert set(move["stats"]) >= {"total_ms", "downtime_ms"}
    got = api.client.get(f"/api/v1/vms/{vm['id']}", headers=api.op).json()
    host = api.client.get(f"/api/v1/hosts/{got['host_id']}", headers=api.op).json()
    assert host["name"] == "sz1-m01-t02-h01"
    audit = api.client.get("/api/v1/audit-events?limit=50", headers=api.op).json()["items"]
    assert any(
        e["action"] == "vm.migrate"
        and e["result"] == "success"
        and e["detail"].get("workflow_id") == started["workflow_id"]
        for e in audit
    ), "audited when it ended"
    r = api.client.get(f"/api/v1/migrations/{vm['id']}", headers=api.op)
    assert r.status_code == 404 and r.json()["error"]["field"] == "workflow_id"
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/migrate?wait=false",
        headers=api.op,
        json={"to": "sh1-m01-t01-h01"},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "infeasible"


def test_refusals_name_the_field(api: Api, make_tenant: Any) -> None:
    acme, vm = _setup(api, make_tenant)
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/migrate", headers=api.op, json={"to": "sh1-m01-t01-h01"}
    )
    assert r.status_code == 409
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("infeasible", "to")
    assert "routed-clos" in err["message"]
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/migration-plan", headers=api.op, json={"to": "nope"}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "to"
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/migration-plan",
        headers=api.op,
        json={"to": "sz1-m01-t01-h02", "to_site": "sh1"},
    )
    assert r.status_code == 422
    r = api.client.post(f"/api/v1/vms/{vm['id']}/migration-plan", headers=acme.headers, json={})
    assert r.status_code == 403


def test_evacuate_host_in_the_background_with_status(api: Api, make_tenant: Any) -> None:
    _setup(api, make_tenant)
    r = api.client.post("/api/v1/hosts/sz1-m01-t01-h01/evacuate", headers=api.op, json={})
    assert r.status_code == 202, r.text
    batch_id = r.json()["id"]
    deadline = time.monotonic() + 30
    while True:
        row = api.client.get(f"/api/v1/migration-batches/{batch_id}", headers=api.op).json()
        if row["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (row["state"], row["total"], row["moved"]) == ("succeeded", 1, 1)
    r = api.client.post(
        "/api/v1/hosts/sz1-m01-t01-h01/evacuate", headers=api.op, json={"per_host": 0}
    )
    assert r.status_code == 422


def test_site_evacuation_plan(api: Api, make_tenant: Any) -> None:
    _setup(api, make_tenant)
    r = api.client.get("/api/v1/sites/sz1/evacuation-plan", headers=api.op)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["keep_ip"], body["readdress"]) == (0, 1)
    assert "routed-clos" in body["vms"][0]["reasons"][0]
