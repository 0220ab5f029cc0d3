"""The VM lifecycle through the API, quotas and rollback included."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import func, select

from fuyun.store.models import Host, Port, Quota, Vm
from tests.api.conftest import Api, TenantAccount


def _usage(api: Api, tenant: TenantAccount) -> dict[str, int]:
    data = api.client.get("/api/v1/quotas", headers=tenant.headers).json()
    return {u["resource"]: u["used"] for u in data["usage"]}


def test_apply_adjust_return(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/vms", headers=acme.headers, json={"name": "web", "flavor": "s1.small", "count": 3}
    )
    assert r.status_code == 201, r.text
    made = r.json()["items"]
    assert [vm["name"] for vm in made] == ["web-1", "web-2", "web-3"]
    assert all(vm["state"] == "active" for vm in made)
    assert all(vm["host_id"] is None for vm in made), "partners get a host-independent view"
    assert _usage(api, acme)["vms"] == 3

    vm_id = made[0]["id"]
    assert (
        api.client.post(f"/api/v1/vms/{vm_id}/stop", headers=acme.headers).json()["state"]
        == "stopped"
    )
    assert (
        api.client.post(f"/api/v1/vms/{vm_id}/start", headers=acme.headers).json()["state"]
        == "active"
    )
    assert api.client.post(f"/api/v1/vms/{vm_id}/reboot", headers=acme.headers).status_code == 200

    op_view = api.client.get(f"/api/v1/vms/{vm_id}", headers=api.op).json()
    assert op_view["host_id"] is not None
    host_before = api.client.get(f"/api/v1/hosts/{op_view['host_id']}", headers=api.op).json()

    r = api.client.delete(f"/api/v1/vms/{vm_id}", headers=acme.headers)
    assert r.status_code == 200 and r.json()["state"] == "deleted"
    assert api.client.get(f"/api/v1/vms/{vm_id}", headers=acme.headers).status_code == 404
    host_after = api.client.get(f"/api/v1/hosts/{op_view['host_id']}", headers=api.op).json()
    assert host_after["vm_count"] == host_before["vm_count"] - 1
    assert host_after["used_vcpus"] == host_before["used_vcpus"] - op_view["vcpus"]
    assert _usage(api, acme)["vms"] == 2
    assert api.driver.status(_host_name(api, op_view["host_id"]), vm_id) is None  # type: ignore[arg-type]
    names = [
        vm["name"] for vm in api.client.get("/api/v1/vms", headers=acme.headers).json()["items"]
    ]
    assert names == ["web-2", "web-3"]


def _host_name(api: Api, host_id: str) -> str:
    return api.client.get(f"/api/v1/hosts/{host_id}", headers=api.op).json()["name"]


def test_illegal_transition_is_409(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme")
    vm = api.client.post(
        "/api/v1/vms", headers=acme.headers, json={"name": "w", "flavor": "s1.small"}
    ).json()["items"][0]
    api.client.post(f"/api/v1/vms/{vm['id']}/stop", headers=acme.headers)
    r = api.client.post(f"/api/v1/vms/{vm['id']}/reboot", headers=acme.headers)
    assert r.status_code == 409 and r.json()["error"]["field"] == "state"


def test_quota_refusal_creates_nothing(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme", vms=2)
    r = api.client.post(
        "/api/v1/vms", headers=acme.headers, json={"name": "web", "flavor": "s1.small", "count": 3}
    )
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "quota_exceeded" and err["field"] == "vms"
    assert "limit 2" in err["message"]
    assert api.client.get("/api/v1/vms", headers=acme.headers).json()["items"] == []
    assert _usage(api, acme)["vms"] == 0
    events = api.client.get(
        "/api/v1/audit-events", headers=acme.headers, params={"action": "vm.create"}
    ).json()["items"]
    assert events[0]["result"] == "failure"
    assert events[0]["detail"]["error"] == "quota_exceeded"


def test_vcpu_quota_counts_flavor_size(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme", vcpus=3)
    r = api.client.post(
        "/api/v1/vms", headers=acme.headers, json={"name": "big", "flavor": "s1.medium", "count": 2}
    )
    assert r.status_code == 409 and r.json()["error"]["field"] == "vcpus"


def test_driver_failure_rolls_everything_back(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    with api.db.read_session() as s:
        used_before = s.scalar(select(func.sum(Host.used_vcpus)))
    api.driver.fail_on["create"] = "disk image missing"
    r = api.client.post(
        "/api/v1/vms", headers=acme.headers, json={"name": "web", "flavor": "s1.small", "count": 2}
    )
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "driver_error"
    with api.db.read_session() as s:
        states = set(s.scalars(select(Vm.state)))
        assert states == {"deleted"}, "the rolled-back VMs are kept as deleted records"
        assert s.scalar(select(func.count()).select_from(Port)) == 0
        assert s.scalar(select(func.sum(Host.used_vcpus))) == used_before
        quota = s.get(Quota, uuid.UUID(acme.id))
        assert quota is not None and quota.used_vms == 0
    api.driver.fail_on.clear()
    assert (
        api.client.post(
            "/api/v1/vms", headers=acme.headers, json={"name": "web", "flavor": "s1.small"}
        ).status_code
        == 201
    )


def test_operator_pins_to_a_host_until_it_is_full(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme", vms=100, vcpus=1000, ram_mb=10**7)
    host = api.client.get("/api/v1/hosts", headers=api.op, params={"limit": 1}).json()["items"][0]
    room = host["max_vms"] - host["vm_count"]
    r = api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={
            "name": "pin",
            "flavor": "s1.small",
            "count": room,
            "host": host["name"],
            "tenant_id": acme.id,
        },
    )
    assert r.status_code == 201, r.text
    r = api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={"name": "one-more", "flavor": "s1.small", "host": host["name"], "tenant_id": acme.id},
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "unschedulable"
    assert host["name"] in r.json()["error"]["message"]


def test_tenants_cannot_pin_hosts(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme")
    host = api.client.get("/api/v1/hosts", headers=api.op, params={"limit": 1}).json()["items"][0]
    r = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "x", "flavor": "s1.small", "host": host["name"]},
    )
    assert r.status_code == 403 and r.json()["error"]["field"] == "host"


def test_maintenance_host_gets_no_new_vms(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    host = api.client.get("/api/v1/hosts", headers=api.op, params={"limit": 1}).json()["items"][0]
    api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={"name": "pinned", "flavor": "s1.small", "host": host["name"], "tenant_id": acme.id},
    )
    r = api.client.post(
        f"/api/v1/hosts/{host['id']}/state", headers=api.op, json={"state": "maintenance"}
    )
    assert r.status_code == 200
    assert len(r.json()["vms_to_move"]) == 1
    r = api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={"name": "late", "flavor": "s1.small", "host": host["name"], "tenant_id": acme.id},
    )
    assert r.status_code == 409


def test_every_mutation_is_audited(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme")
    vm = api.client.post(
        "/api/v1/vms", headers=acme.headers, json={"name": "w", "flavor": "s1.small"}
    ).json()["items"][0]
    api.client.post(f"/api/v1/vms/{vm['id']}/stop", headers=acme.headers)
    api.client.delete(f"/api/v1/vms/{vm['id']}", headers=acme.headers)
    events = api.client.get("/api/v1/audit-events", headers=acme.headers).json()["items"]
    actions = [(e["action"], e["result"], e["actor"]) for e in events]
    assert ("vm.delete", "success", "acme-admin") in actions
    assert ("vm.stop", "success", "acme-admin") in actions
    assert ("vm.create", "success", "acme-admin") in actions
    assert all(e["tenant_id"] == acme.id for e in events)
    op_events = api.client.get("/api/v1/audit-events", headers=api.op).json()["items"]
    assert any(e["action"] == "tenant.create" for e in op_events)
