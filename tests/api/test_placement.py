"""Network-aware placement and the adjust verbs, through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api, TenantAccount

Tenant = Callable[..., TenantAccount]


def _vm(api: Api, headers: dict[str, str], **body: Any) -> Any:
    return api.client.post("/api/v1/vms", headers=headers, json={"flavor": "s1.small", **body})


def _host(api: Api, vm_id: str) -> dict[str, Any]:
    vm = api.client.get(f"/api/v1/vms/{vm_id}", headers=api.op).json()
    return api.client.get(f"/api/v1/hosts/{vm['host_id']}", headers=api.op).json()


def _tor_name(api: Api, tor_id: str) -> str:
    return api.client.get(f"/api/v1/switches/{tor_id}", headers=api.op).json()["name"]


def test_vms_land_in_the_network_module_and_stay_on_few_tors(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = api.client.post(
        "/api/v1/networks",
        headers=acme.headers,
        json={"name": "web", "cidr": "10.1.0.0/24", "site": "sz1"},
    ).json()
    r = _vm(api, acme.headers, name="web", count=6, networks=["web"])
    assert r.status_code == 201, r.text
    made = r.json()["items"]
    hosts = [_host(api, vm["id"]) for vm in made]
    modules = {h["module_id"] for h in hosts}
    assert len(modules) == 1
    module = api.client.get(f"/api/v1/modules/{modules.pop()}", headers=api.op).json()
    assert module["name"] == "sz1-m01"
    tors = {h["tor_id"] for h in hosts}
    # Locality packs a batch onto the ToRs that already carry the VLAN.
    assert len(tors) <= 2
    ports = api.client.get(
        "/api/v1/ports", headers=acme.headers, params={"network_id": net["id"]}
    ).json()["items"]
    assert len(ports) == 6 and {p["vm_id"] for p in ports} == {vm["id"] for vm in made}
    detail = api.client.get(f"/api/v1/networks/{net['id']}", headers=api.op).json()
    assert set(detail["span"]) == {_tor_name(api, t) for t in tors}


def test_routed_module_keeps_the_network_on_one_tor(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme", vms=100, vcpus=400, ram_mb=10**7, bandwidth_mbps=10**6)
    api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": "r", "cidr": "10.2.0.0/24", "module": "sh1-m01", "tenant_id": acme.id},
    )
    first = _vm(api, acme.headers, name="a", networks=["r"]).json()["items"][0]
    tor = _host(api, first["id"])["tor_id"]
    room = sum(
        h["max_vms"] - h["vm_count"]
        for h in api.client.get("/api/v1/hosts", headers=api.op, params={"tor": tor}).json()[
            "items"
        ]
    )
    r = _vm(api, acme.headers, name="b", count=room, networks=["r"])
    assert r.status_code == 201, r.text
    assert {_host(api, vm["id"])["tor_id"] for vm in r.json()["items"]} == {tor}
    r = _vm(api, acme.headers, name="c", networks=["r"])
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "unschedulable"
    assert "routed-clos confines the VLAN" in err["message"]


def test_anti_affinity_spreads_a_group_over_tors(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/server-groups",
        headers=acme.headers,
        json={"name": "ha", "policy": "anti-affinity", "level": "tor"},
    )
    assert r.status_code == 201
    made = _vm(api, acme.headers, name="db", count=3, group="ha").json()["items"]
    assert len({_host(api, vm["id"])["tor_id"] for vm in made}) == 3
    tors = api.client.get(
        "/api/v1/switches", headers=api.op, params={"role": "tor", "limit": 1000}
    ).json()["items"]
    r = _vm(api, acme.headers, name="more", count=len(tors) - 2, group="ha")
    assert r.status_code == 409
    assert "anti-affinity" in r.json()["error"]["message"]


def test_explain_says_why_and_why_not(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    api.client.post(
        "/api/v1/networks",
        headers=acme.headers,
        json={"name": "web", "cidr": "10.1.0.0/24", "site": "sz1"},
    )
    vm = _vm(api, acme.headers, name="w", networks=["web"]).json()["items"][0]
    e = api.client.get(f"/api/v1/vms/{vm['id']}/explain", headers=api.op).json()
    assert e["host"] and e["placement"]["top"][0][0] == e["host"]
    assert e["placement"]["considered"] >= 1
    other = api.client.get(
        "/api/v1/hosts", headers=api.op, params={"module": "sh1-m01", "limit": 1}
    ).json()["items"][0]
    e = api.client.get(
        f"/api/v1/vms/{vm['id']}/explain", headers=api.op, params={"host": other["name"]}
    ).json()
    verdicts = {v["filter"]: v for v in e["verdicts"]}
    assert verdicts["network-reachability"]["passes"] is False
    assert "sz1-m01" in verdicts["network-reachability"]["reason"]
    assert verdicts["vcpu"]["passes"] is True
    r = api.client.get(f"/api/v1/vms/{vm['id']}/explain", headers=acme.headers)
    assert r.status_code == 403


def test_resize_in_place_and_refused_when_it_does_not_fit(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme", vcpus=1000, ram_mb=10**7, bandwidth_mbps=10**6)
    vm = _vm(api, acme.headers, name="w").json()["items"][0]
    before = _host(api, vm["id"])
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/resize", headers=acme.headers, json={"flavor": "s1.large"}
    )
    assert r.status_code == 200 and r.json()["vcpus"] == 4
    after = _host(api, vm["id"])
    assert after["used_vcpus"] == before["used_vcpus"] + 3
    quota = {
        u["resource"]: u["used"]
        for u in api.client.get("/api/v1/quotas", headers=acme.headers).json()["usage"]
    }
    assert quota["vcpus"] == 4
    # Fill the host's RAM so the next size cannot fit there.
    api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={
            "name": "filler",
            "flavor": "s1.xlarge",
            "host": after["name"],
            "tenant_id": acme.id,
            "count": 1,
        },
    )
    host = _host(api, vm["id"])
    free_ram = host["ram_mb"] - host["used_ram_mb"]
    r = api.client.post(
        "/api/v1/flavors",
        headers=api.op,
        json={"name": "huge", "vcpus": 4, "ram_mb": 8192 + free_ram + 1, "disk_gb": 80},
    )
    assert r.status_code == 201
    # It no longer fits on its host: the resize moves it (keeping its addresses) first.
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/resize", headers=acme.headers, json={"flavor": "huge"}
    )
    assert r.status_code == 200, r.json()
    assert r.json()["ram_mb"] == 8192 + free_ram + 1
    moved = _host(api, vm["id"])
    assert moved["name"] != host["name"]
    assert _host_by_name(api, host["name"])["used_ram_mb"] == host["used_ram_mb"] - 8192
    # A size no host can hold: refused with the move's reasons, nothing changes.
    r = api.client.post(
        "/api/v1/flavors",
        headers=api.op,
        json={"name": "giant", "vcpus": 4, "ram_mb": 10**6, "disk_gb": 80},
    )
    assert r.status_code == 201, r.json()
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/resize", headers=acme.headers, json={"flavor": "giant"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "infeasible"
    assert "ram" in r.json()["error"]["message"]
    assert _host(api, vm["id"])["name"] == moved["name"]


def _host_by_name(api: Api, name: str) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/hosts?name_prefix={name}", headers=api.op)
    return next(h for h in r.json()["items"] if h["name"] == name)  # type: ignore[no-any-return]


def test_add_and_remove_a_nic(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    for name, cidr in (("front", "10.1.0.0/24"), ("back", "10.2.0.0/24")):
        api.client.post(
            "/api/v1/networks",
            headers=acme.headers,
            json={"name": name, "cidr": cidr, "site": "sz1"},
        )
    vm = _vm(api, acme.headers, name="w", networks=["front"]).json()["items"][0]
    r = api.client.post(
        f"/api/v1/vms/{vm['id']}/nics",
        headers=acme.headers,
        json={"network": "back", "ip": "10.2.0.77"},
    )
    assert r.status_code == 200, r.text
    ports = api.client.get(
        "/api/v1/ports", headers=acme.headers, params={"vm_id": vm["id"]}
    ).json()["items"]
    assert sorted(p["ips"][0] for p in ports) == ["10.1.0.2", "10.2.0.77"]
    back = next(p for p in ports if p["ips"] == ["10.2.0.77"])
    r = api.client.delete(f"/api/v1/vms/{vm['id']}/nics/{back['id']}", headers=acme.headers)
    assert r.status_code == 200
    ports = api.client.get(
        "/api/v1/ports", headers=acme.headers, params={"vm_id": vm["id"]}
    ).json()["items"]
    assert [p["ips"] for p in ports] == [["10.1.0.2"]]


def test_delete_returns_addresses_span_and_quota(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = api.client.post(
        "/api/v1/networks",
        headers=acme.headers,
        json={"name": "web", "cidr": "10.1.0.0/24", "site": "sz1"},
    ).json()
    vm = _vm(api, acme.headers, name="w", networks=["web"]).json()["items"][0]
    tor = _host(api, vm["id"])["tor_id"]
    assert api.client.get(f"/api/v1/switches/{tor}", headers=api.op).json()["used_vlans"] == 1
    assert api.client.delete(f"/api/v1/vms/{vm['id']}", headers=acme.headers).status_code == 200
    sw = api.client.get(f"/api/v1/switches/{tor}", headers=api.op).json()
    assert (sw["used_vlans"], sw["used_mac"]) == (0, 0)
    usage = api.client.get(
        "/api/v1/utilization", headers=acme.headers, params={"network_id": net["id"]}
    ).json()["networks"][0]
    assert (usage["allocated"], usage["quarantined"]) == (0, 1)
    quota = {
        u["resource"]: u["used"]
        for u in api.client.get("/api/v1/quotas", headers=acme.headers).json()["usage"]
    }
    assert quota == {"vms": 0, "vcpus": 0, "ram_mb": 0, "ips": 0, "bandwidth_mbps": 0, "rules": 0}
    wf = api.client.get(
        "/api/v1/workflows", headers=acme.headers, params={"kind": "vm.delete"}
    ).json()["items"][0]
    detail = api.client.get(f"/api/v1/workflows/{wf['id']}", headers=acme.headers).json()
    assert detail["state"] == "succeeded"
    assert [s["state"] for s in detail["steps"]] == ["done", "done"]


def test_a_failed_boot_rolls_back_and_is_recorded(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    api.client.post(
        "/api/v1/networks", headers=acme.headers, json={"name": "web", "cidr": "10.1.0.0/24"}
    )
    api.driver.fail_on["create"] = "no image"
    r = _vm(api, acme.headers, name="w", count=3, networks=["web"])
    assert r.status_code == 502
    wf = api.client.get(
        "/api/v1/workflows", headers=acme.headers, params={"kind": "vm.create"}
    ).json()["items"][0]
    detail = api.client.get(f"/api/v1/workflows/{wf['id']}", headers=acme.headers).json()
    assert detail["state"] == "rolled_back"
    assert [s["state"] for s in detail["steps"]] == ["undone", "undone", "pending"]
    assert "no image" in detail["error"]
    assert api.client.get("/api/v1/ports", headers=acme.headers).json()["items"] == []
    assert api.driver.list_instances("anything") == []
