"""Switch tables as ports bind to hosts: span growth, refusals with numbers, dry runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api, TenantAccount


def _switch(api: Api, name: str) -> dict[str, Any]:
    page = api.client.get("/api/v1/switches", headers=api.op, params={"name_prefix": name})
    return next(s for s in page.json()["items"] if s["name"] == name)


def _bind(api: Api, network_id: str, host: str, dry_run: bool = False) -> Any:
    return api.client.post(
        "/api/v1/ports",
        headers=api.op,
        params={"dry_run": dry_run},
        json={"network_id": network_id, "host": host},
    )


def _network(api: Api, tenant: TenantAccount, module: str) -> dict[str, Any]:
    r = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={
            "name": f"net-{module}",
            "cidr": "10.5.0.0/24",
            "module": module,
            "tenant_id": tenant.id,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_switched_clos_span_and_tables(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme")
    net = _network(api, acme, "sz1-m01")
    p1 = _bind(api, net["id"], "sz1-m01-t01-h01").json()
    t1, agg = _switch(api, "sz1-m01-t01"), _switch(api, "sz1-m01-agg1")
    assert (t1["used_mac"], t1["used_vlans"], t1["used_arp"]) == (1, 1, 0)
    assert (agg["used_mac"], agg["used_vlans"], agg["used_arp"]) == (1, 1, 1)
    assert {(c["switch"], c["table"]) for c in p1["l2"]} >= {
        ("sz1-m01-t01", "mac"),
        ("sz1-m01-agg1", "arp"),
        ("sz1-m01-agg2", "vlans"),
    }

    # A second ToR joins: it learns the existing MAC and its own; everyone learns the new one.
    _bind(api, net["id"], "sz1-m01-t02-h01")
    t1, t2, agg = (_switch(api, n) for n in ("sz1-m01-t01", "sz1-m01-t02", "sz1-m01-agg1"))
    assert (t1["used_mac"], t2["used_mac"], agg["used_mac"]) == (2, 2, 2)
    assert (t2["used_vlans"], agg["used_arp"]) == (1, 2)
    detail = api.client.get(f"/api/v1/networks/{net['id']}", headers=api.op).json()
    assert detail["span"] == ["sz1-m01-t01", "sz1-m01-t02"]

    # The last port below t01 leaves: t01 drops the VLAN and every MAC of it.
    api.client.delete(f"/api/v1/ports/{p1['id']}", headers=api.op)
    t1, t2, agg = (_switch(api, n) for n in ("sz1-m01-t01", "sz1-m01-t02", "sz1-m01-agg1"))
    assert (t1["used_mac"], t1["used_vlans"]) == (0, 0)
    assert (t2["used_mac"], agg["used_mac"], agg["used_arp"]) == (1, 1, 1)
    detail = api.client.get(f"/api/v1/networks/{net['id']}", headers=api.op).json()
    assert detail["span"] == ["sz1-m01-t02"]


def test_full_aggregation_mac_table_refuses_next_port(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    net = _network(api, acme, "sz1-m01")
    for host in ("sz1-m01-t01-h01", "sz1-m01-t01-h02", "sz1-m01-t02-h01"):
        assert _bind(api, net["id"], host).status_code == 201
    agg = _switch(api, "sz1-m01-agg1")
    assert agg["used_mac"] == 3
    r = api.client.patch(f"/api/v1/switches/{agg['id']}", headers=api.op, json={"mac_capacity": 3})
    assert r.status_code == 200

    preview = _bind(api, net["id"], "sz1-m01-t02-h02", dry_run=True)
    assert preview.status_code == 201 and preview.json()["dry_run"] is True
    over = [c for c in preview.json()["l2"] if not c["fits"]]
    assert over == [
        {
            "switch": "sz1-m01-agg1",
            "table": "mac",
            "used": 3,
            "after": 4,
            "capacity": 3,
            "fits": False,
        }
    ]
    assert _switch(api, "sz1-m01-agg1")["used_mac"] == 3  # the dry run changed nothing
    ports = api.client.get(
        "/api/v1/ports", headers=api.op, params={"network_id": net["id"]}
    ).json()["items"]
    assert len(ports) == 3

    r = _bind(api, net["id"], "sz1-m01-t02-h02")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "switch_table_full"
    assert "sz1-m01-agg1" in err["message"] and "MAC" in err["message"]
    assert "4" in err["message"] and "3" in err["message"]
    after = api.client.get(
        "/api/v1/ports", headers=api.op, params={"network_id": net["id"]}
    ).json()["items"]
    assert len(after) == 3, "the refused port left nothing behind"
    assert _switch(api, "sz1-m01-t02")["used_mac"] == 3


def test_routed_clos_confines_a_vlan_to_its_tor(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    net = _network(api, acme, "sh1-m01")
    hosts = api.client.get(
        "/api/v1/hosts", headers=api.op, params={"module": "sh1-m01", "limit": 100}
    ).json()["items"]
    by_tor: dict[str, str] = {}
    for h in hosts:
        by_tor.setdefault(h["tor_id"], h["name"])
    first, second = list(by_tor.values())[:2]
    assert _bind(api, net["id"], first).status_code == 201
    r = _bind(api, net["id"], second)
    assert r.status_code == 409 and r.json()["error"]["code"] == "l2_unreachable"
    assert "routed-clos" in r.json()["error"]["message"]
    tor = api.client.get(f"/api/v1/switches/{hosts[0]['tor_id']}", headers=api.op).json()
    assert tor["used_arp"] >= 1  # in a routed CLOS the ToR holds the gateway


def test_tenants_cannot_bind_hosts(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    acme = make_tenant("acme")
    net = api.client.post(
        "/api/v1/networks", headers=acme.headers, json={"name": "n", "cidr": "10.0.0.0/24"}
    ).json()
    r = api.client.post(
        "/api/v1/ports",
        headers=acme.headers,
        json={"network_id": net["id"], "host": "sz1-m01-t01-h01"},
    )
    assert r.status_code == 403 and r.json()["error"]["field"] == "host"
