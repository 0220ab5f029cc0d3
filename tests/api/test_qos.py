"""QoS over HTTP: 422 naming the field, 409 admission refusals with reasons, tenant isolation."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import update

from fuyun.domain.qos import HostQos
from fuyun.store.models import Host
from tests.api.conftest import Api, TenantAccount

P = "/api/v1/qos-policies"


def _vm(api: Api, t: TenantAccount, name: str, **extra: object) -> dict:
    r = api.client.post(
        "/api/v1/vms",
        headers=t.headers,
        json={"name": name, "flavor": "s1.small", "networks": ["app"], **extra},
    )
    assert r.status_code == 201, r.text
    return r.json()["items"][0]


def _tenant(api: Api, make_tenant: Callable[..., TenantAccount], name: str) -> TenantAccount:
    t = make_tenant(name, bandwidth_mbps=5000)
    r = api.client.post(
        "/api/v1/networks",
        headers=t.headers,
        json={"name": "app", "cidr": "10.0.0.0/24", "site": "sz1"},
    )
    assert r.status_code == 201, r.text
    return t


def test_bad_policies_are_422_naming_the_field(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    t = make_tenant("acme")
    cases = [
        ({"name": "p", "guarantee_mbps": 200, "ceiling_mbps": 100}, "guarantee_mbps"),
        ({"name": "p", "ceiling_mbps": 0}, "ceiling_mbps"),
        ({"name": "p", "guarantee_mbps": -1, "ceiling_mbps": 10}, "guarantee_mbps"),
        ({"name": "p", "ceiling_mbps": 10, "burst_bytes": -1}, "burst_bytes"),
        ({"name": "p", "ceiling_mbps": 300_000}, "ceiling_mbps"),
        ({"name": "p", "ceiling_mbps": 10, "scope": "vm"}, "scope"),
    ]
    for body, field in cases:
        r = api.client.post(P, headers=t.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field, (body, r.json())


def test_attach_admit_refuse_and_isolate(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    t = _tenant(api, make_tenant, "studio")
    other = make_tenant("rival")
    r = api.client.post(
        P, headers=t.headers, json={"name": "gold", "guarantee_mbps": 300, "ceiling_mbps": 1000}
    )
    assert r.status_code == 201, r.text
    gold = r.json()
    vm = _vm(api, t, "web", qos_policy="gold")
    r = api.client.get(f"/api/v1/vms/{vm['id']}", headers=api.op)
    host_id = r.json()["host_id"]
    with api.db.read_session() as s:
        host = s.get(Host, uuid.UUID(host_id))
        assert host is not None
        assert host.used_bandwidth_mbps == 100 + 300
        name = host.name
    r = api.client.get("/api/v1/devices", headers=api.op, params={"lagging": "true"})
    assert r.status_code == 200
    # The rival sees neither the policy nor may it attach it.
    assert api.client.get(f"{P}/{gold['id']}", headers=other.headers).status_code == 404
    assert api.client.get(P, headers=other.headers).json() == []
    r = api.client.put(
        f"/api/v1/vms/{vm['id']}/qos-policy", headers=other.headers, json={"qos_policy": "gold"}
    )
    assert r.status_code == 404
    # Shrink the host's NIC: a second guarantee is refused naming the host uplink.
    with api.db.write_session() as s:
        s.execute(update(Host).where(Host.id == host.id).values(nic_mbps=1000))
    r = api.client.patch(f"{P}/{gold['id']}", headers=t.headers, json={"ceiling_mbps": 1200})
    assert r.status_code == 422 and r.json()["error"]["field"] == "ceiling_mbps"
    assert "1000 Mbit/s NIC of host" in r.json()["error"]["message"]
    r = api.client.patch(f"{P}/{gold['id']}", headers=t.headers, json={"guarantee_mbps": 1000})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "admission_refused" and err["field"] == "guarantee_mbps"
    assert f"host uplink of {name}" in err["message"]
    r = api.client.patch(f"{P}/{gold['id']}", headers=t.headers, json={"guarantee_mbps": 400})
    assert r.status_code == 200 and r.json()["guarantee_mbps"] == 400
    r = api.client.put(
        f"/api/v1/vms/{vm['id']}/qos-policy", headers=t.headers, json={"qos_policy": None}
    )
    assert r.status_code == 200 and r.json()["qos_policy"] is None
    r = api.client.delete(f"{P}/{gold['id']}", headers=t.headers)
    assert r.status_code == 204
    r = api.client.get("/api/v1/audit-events", headers=t.headers, params={"limit": 50}).json()[
        "items"
    ]
    actions = {(e["action"], e["result"]) for e in r}
    assert ("qos-policy.update", "failure") in actions
    assert ("qos-policy.update", "success") in actions
    assert ("vm.qos", "success") in actions


def test_tenant_aggregate_and_host_document(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    t = _tenant(api, make_tenant, "studio")
    vm = _vm(api, t, "web")
    r = api.client.post(
        P,
        headers=t.headers,
        json={"name": "all", "scope": "tenant", "guarantee_mbps": 200, "ceiling_mbps": 900},
    )
    assert r.status_code == 201
    r = api.client.put(
        f"/api/v1/tenants/{t.id}/qos-policy", headers=t.headers, json={"qos_policy": "all"}
    )
    assert r.status_code == 200 and r.json()["qos_policy"]["name"] == "all"
    r = api.client.get(f"/api/v1/tenants/{t.id}/qos-policy", headers=t.headers)
    assert r.json()["qos_policy"]["ceiling_mbps"] == 900
    # A tenant policy is not a port policy.
    r = api.client.put(
        f"/api/v1/vms/{vm['id']}/qos-policy", headers=t.headers, json={"qos_policy": "all"}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "qos_policy"
    host_id = api.client.get(f"/api/v1/vms/{vm['id']}", headers=api.op).json()["host_id"]
    with api.db.read_session() as s:
        host = s.get(Host, uuid.UUID(host_id))
        assert host is not None
        hname = host.name
    devices = api.client.get("/api/v1/devices", headers=api.op).json()
    assert [d for d in devices if d["device_name"] == hname and d["enforcement_point"] == "qos"]
    r = api.client.get(
        f"/api/v1/devices/host/{hname}", headers=api.op, params={"enforcement_point": "qos"}
    )
    doc = HostQos.from_json(r.json()["rendered"])
    assert [(x.tenant, x.min_bps, x.max_bps) for x in doc.tenants] == [
        ("studio", 200_000_000, 900_000_000)
    ]
    # Without a choice the host's documents are ambiguous: a 422 naming the field and them.
    r = api.client.get(f"/api/v1/devices/host/{hname}", headers=api.op)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "enforcement_point"
    assert "qos" in error["message"] and "vswitch" in error["message"]
    r = api.client.get(
        f"/api/v1/devices/host/{hname}", headers=api.op, params={"enforcement_point": "vswitch"}
    )
    assert r.status_code == 200 and r.json()["enforcement_point"] == "vswitch"
    r = api.client.get(
        f"/api/v1/devices/host/{hname}", headers=api.op, params={"enforcement_point": "vepa"}
    )
    assert r.status_code == 404 and r.json()["error"]["field"] == "enforcement_point"
