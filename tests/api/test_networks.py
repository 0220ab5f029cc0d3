"""Tenant networks, ports and addressing through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api, TenantAccount

Tenant = Callable[..., TenantAccount]


def _net(api: Api, t: TenantAccount, **body: Any) -> dict[str, Any]:
    r = api.client.post("/api/v1/networks", headers=t.headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _port(api: Api, headers: dict[str, str], network_id: str, **body: Any) -> Any:
    return api.client.post(
        "/api/v1/ports", headers=headers, json={"network_id": network_id, **body}
    )


def test_network_gets_vlan_subnet_and_gateway(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.1.0.0/24", site="sz1")
    assert 100 <= net["vlans"][0] <= 3999
    [sub] = net["subnets"]
    assert sub["cidr"] == "10.1.0.0/24" and sub["gateway"] == "10.1.0.1"
    assert sub["capacity"] == 253  # minus network, broadcast and gateway
    carved = _net(api, acme, name="db", prefix_len=26, site="sz1")
    assert carved["subnets"][0]["cidr"].endswith("/26")
    assert carved["vlans"][0] != net["vlans"][0]


def test_ports_get_next_free_addresses_and_unique_macs(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.1.0.0/24", reserve_first=2)
    made = [_port(api, acme.headers, net["id"]).json() for _ in range(3)]
    assert [p["ips"] for p in made] == [["10.1.0.4"], ["10.1.0.5"], ["10.1.0.6"]]
    macs = {p["mac"] for p in made}
    assert len(macs) == 3 and all(m.startswith("fa:16:3e:") for m in macs)


def test_explicit_ip_in_use_and_quarantine(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.1.0.0/24")
    p = _port(api, acme.headers, net["id"], ip="10.1.0.50").json()
    assert p["ips"] == ["10.1.0.50"]
    r = _port(api, acme.headers, net["id"], ip="10.1.0.50")
    assert r.status_code == 409 and r.json()["error"]["code"] == "address_in_use"
    r = _port(api, acme.headers, net["id"], ip="10.1.0.1")
    assert r.status_code == 409 and r.json()["error"]["code"] == "address_reserved"
    assert api.client.delete(f"/api/v1/ports/{p['id']}", headers=acme.headers).status_code == 204
    r = _port(api, acme.headers, net["id"], ip="10.1.0.50")
    assert r.status_code == 409 and r.json()["error"]["code"] == "address_quarantined"
    r = _port(api, acme.headers, net["id"], ip="10.2.0.1")
    assert r.status_code == 422 and r.json()["error"]["field"] == "ip"


def test_full_subnet_grows_secondary(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.9.0.0/29", growth="secondary")
    ips = [_port(api, acme.headers, net["id"]).json()["ips"][0] for _ in range(5)]
    assert ips == [f"10.9.0.{i}" for i in range(2, 7)]
    grown = _port(api, acme.headers, net["id"]).json()
    assert grown["grew"] and grown["grew"].startswith("secondary")
    detail = api.client.get(f"/api/v1/networks/{net['id']}", headers=acme.headers).json()
    assert len(detail["subnets"]) == 2 and len(detail["vlans"]) == 1
    assert detail["subnets"][1]["primary"] is False
    assert grown["vlan"] == net["vlans"][0]
    usage = api.client.get(
        "/api/v1/utilization", headers=acme.headers, params={"network_id": net["id"]}
    ).json()["networks"][0]
    assert usage["allocated"] == 6
    assert usage["boundary_loss"] == 3  # network, broadcast and gateway of the /29 secondary
    assert usage["growth_vlans"] == 0


def test_full_subnet_grows_new_vlan(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.9.0.0/29", growth="new-vlan")
    for _ in range(5):
        _port(api, acme.headers, net["id"])
    grown = _port(api, acme.headers, net["id"]).json()
    assert grown["grew"].startswith("new VLAN")
    assert grown["vlan"] != net["vlans"][0]
    usage = api.client.get(
        "/api/v1/utilization", headers=acme.headers, params={"network_id": net["id"]}
    ).json()["networks"][0]
    assert usage["growth_vlans"] == 1 and len(usage["vlans"]) == 2


def test_full_subnet_refuses_when_told(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.9.0.0/30", growth="refuse")
    assert _port(api, acme.headers, net["id"]).status_code == 201
    r = _port(api, acme.headers, net["id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "subnet_exhausted"


def test_bad_input_is_refused_naming_the_field(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    for body, field in (
        ({"name": "x", "cidr": "10.0.0.0/33"}, "cidr"),
        ({"name": "x", "cidr": "10.0.0.1/24"}, "cidr"),
        ({"name": "x", "cidr": "10.0.0.0/24", "vlan": 5000}, "vlan"),
        ({"name": "x", "cidr": "10.0.0.0/24", "gateway": "10.0.1.1"}, "gateway"),
        ({"name": "x!", "cidr": "10.0.0.0/24"}, "name"),
    ):
        r = api.client.post("/api/v1/networks", headers=acme.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field, (body, r.json())
    assert api.client.get("/api/v1/networks", headers=acme.headers).json()["items"] == []


def test_overlap_refused_in_a_vrf_allowed_across(api: Api, make_tenant: Tenant) -> None:
    acme, other = make_tenant("acme"), make_tenant("other")
    _net(api, acme, name="a", cidr="10.1.0.0/24")
    r = api.client.post(
        "/api/v1/networks", headers=acme.headers, json={"name": "b", "cidr": "10.1.0.128/25"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "overlap"
    _net(api, other, name="a", cidr="10.1.0.0/24")


def test_network_with_ports_cannot_be_deleted(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.1.0.0/24")
    port = _port(api, acme.headers, net["id"]).json()
    r = api.client.delete(f"/api/v1/networks/{net['id']}", headers=acme.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "network_in_use"
    assert "1 ports" in r.json()["error"]["message"]
    api.client.delete(f"/api/v1/ports/{port['id']}", headers=acme.headers)
    assert (
        api.client.delete(f"/api/v1/networks/{net['id']}", headers=acme.headers).status_code == 204
    )


def test_ip_quota_is_enforced(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme", ips=2)
    net = _net(api, acme, name="web", cidr="10.1.0.0/24")
    assert _port(api, acme.headers, net["id"]).status_code == 201
    assert _port(api, acme.headers, net["id"]).status_code == 201
    r = _port(api, acme.headers, net["id"])
    assert r.status_code == 409 and r.json()["error"]["field"] == "ips"


def test_vlan_pool_is_configurable(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    net = _net(api, acme, name="web", cidr="10.1.0.0/24", site="sz1")
    pools = api.client.get("/api/v1/vlan-pools", headers=api.op).json()
    pool = next(p for p in pools if p["name"].startswith("sz1-m01"))
    used = net["vlans"][0]
    r = api.client.patch(
        f"/api/v1/vlan-pools/{pool['id']}", headers=api.op, json={"reserved": [used]}
    )
    assert r.status_code == 409  # a VLAN in use cannot become reserved
    r = api.client.patch(
        f"/api/v1/vlan-pools/{pool['id']}",
        headers=api.op,
        json={"vlan_min": used, "vlan_max": used + 1},
    )
    assert r.status_code == 200
    second = _net(api, acme, name="db", cidr="10.2.0.0/24", site="sz1")
    assert second["vlans"] == [used + 1]
    r = api.client.post(
        "/api/v1/networks",
        headers=acme.headers,
        json={"name": "full", "cidr": "10.3.0.0/24", "site": "sz1"},
    )
    assert r.status_code == 409 and "exhausted" in r.json()["error"]["message"]


def test_address_plan_pools(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    agg = api.client.post(
        "/api/v1/prefixes",
        headers=api.op,
        json={"cidr": "100.64.0.0/16", "kind": "aggregate", "site": "sz1"},
    )
    assert agg.status_code == 201
    pool = api.client.post(
        "/api/v1/prefixes",
        headers=api.op,
        json={
            "cidr": "100.64.8.0/22",
            "kind": "pool",
            "module": "sz1-m01",
            "parent_id": agg.json()["id"],
        },
    )
    assert pool.status_code == 201
    bad = api.client.post(
        "/api/v1/prefixes",
        headers=api.op,
        json={"cidr": "100.65.0.0/24", "kind": "pool", "parent_id": agg.json()["id"]},
    )
    assert bad.status_code == 422
    a = _net(api, acme, name="pub-a", prefix_len=24, pool=pool.json()["id"])
    b = _net(api, acme, name="pub-b", prefix_len=24, pool=pool.json()["id"])
    assert [a["subnets"][0]["cidr"], b["subnets"][0]["cidr"]] == ["100.64.8.0/24", "100.64.9.0/24"]
    r = api.client.post(
        "/api/v1/prefixes",
        headers=acme.headers,
        json={"cidr": "100.66.0.0/16", "kind": "aggregate"},
    )
    assert r.status_code == 403


def test_dhcp_scope_is_exactly_what_ipam_allocated(api: Api, make_tenant: Tenant) -> None:
    acme, other = make_tenant("acme"), make_tenant("other")
    r = api.client.post(
        "/api/v1/networks", headers=acme.headers, json={"name": "web_tier", "cidr": "10.7.0.0/24"}
    )
    assert r.status_code == 201, r.text
    net = r.json()
    assert net["dhcp"] is True
    r = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "Web", "flavor": "s1.small", "count": 2, "networks": ["web_tier"]},
    )
    assert r.status_code == 201, r.text
    nics = api.ports_of(r.json()["items"], acme.headers)
    scope = api.client.get(f"/api/v1/networks/{net['id']}/dhcp", headers=acme.headers).json()
    assert scope["enabled"] is True and scope["zone"] == "web-tier.acme.fuyun.internal"
    assert scope["subnets"] == [{"cidr": "10.7.0.0/24", "gateway": "10.7.0.1"}]
    assert scope["dns_server"] == "10.7.0.1" and scope["vlans"] == net["vlans"]
    assert {(x["mac"], x["address"]) for x in scope["reservations"]} == {
        (p["mac"], p["ips"][0]) for p in nics
    }
    assert set(scope["names"]) == {
        "web-1.web-tier.acme.fuyun.internal",
        "web-2.web-tier.acme.fuyun.internal",
    }
    before = scope["generation"]

    assert (
        api.client.get(f"/api/v1/networks/{net['id']}/dhcp", headers=other.headers).status_code
        == 404
    )
    r = api.client.patch(
        f"/api/v1/networks/{net['id']}", headers=acme.headers, json={"dhcp": False}
    )
    assert r.status_code == 200 and r.json()["dhcp"] is False
    scope = api.client.get(f"/api/v1/networks/{net['id']}/dhcp", headers=acme.headers).json()
    assert scope["enabled"] is False and scope["reservations"] == []
    assert scope["generation"] > before
    events = api.client.get("/api/v1/audit-events?action=network.update", headers=api.op).json()
    assert any(e["detail"].get("dhcp") is False for e in events["items"])


def test_network_service_has_one_router_interface_per_vlan(api: Api, make_tenant: Tenant) -> None:
    from fuyun.config import Settings
    from fuyun.services.netservices import network_generations, network_service

    acme = make_tenant("acme")
    net = _net(api, acme, name="grow", cidr="10.9.0.0/24")
    r = api.client.post(
        f"/api/v1/networks/{net['id']}/subnets",
        headers=acme.headers,
        json={"cidr": "10.9.1.0/24", "new_vlan": True},
    )
    assert r.status_code == 201, r.text
    grown = r.json()["vlan"]
    r = api.client.post(
        f"/api/v1/networks/{net['id']}/subnets", headers=acme.headers, json={"cidr": "fd00:9::/64"}
    )
    assert r.status_code == 201, r.text
    v6_vlan = r.json()["vlan"]
    r = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "web", "flavor": "s1.small", "networks": ["grow"]},
    )
    assert r.status_code == 201, r.text
    svc = network_service(api.db, Settings(), net["id"])
    assert svc.generation == network_generations(api.db)[net["id"]]
    assert len(svc.segments) == 2 and svc.segments[0].vlan != svc.segments[1].vlan
    by_vlan = {s.vlan: s for s in svc.segments}
    growth = by_vlan[grown]
    first = next(s for s in svc.segments if s.vlan != grown)
    v6 = ["fd00:9::1/64"]
    assert first.gateways() == ["10.9.0.1/24", *(v6 if v6_vlan == first.vlan else [])]
    assert growth.gateways() == ["10.9.1.1/24", *(v6 if v6_vlan == grown else [])]
    assert svc.segment_scope(growth).dns_server == "10.9.1.1"
    assert [(x.address, x.hostname) for x in svc.scope.reservations] == [("10.9.0.2", "web")]
    scope = api.client.get(f"/api/v1/networks/{net['id']}/dhcp", headers=acme.headers)
    assert scope.status_code == 200, scope.text  # a dual-stack scope renders


def _dhcp_of_ports(api: Api, port_ids: set[str]) -> dict[str, tuple[str, ...]]:
    """Each port's DHCP service as every device enforcing it has it compiled."""
    from sqlalchemy import select

    from fuyun.policy.ir import from_json
    from fuyun.store.models import DeviceState

    seen: dict[str, tuple[str, ...]] = {}
    with api.db.read_session() as s:
        for ir in s.scalars(select(DeviceState.ir).where(DeviceState.enforcement_point != "ports")):
            if not ir or "ports" not in ir:
                continue
            for p in from_json(ir).ports:
                if str(p.endpoint.port_id) in port_ids:
                    seen[str(p.endpoint.port_id)] = p.endpoint.dhcp
    assert set(seen) == port_ids
    return seen


def test_turning_dhcp_off_or_on_or_adding_a_gateway_recompiles_the_ports_bindings(
    api: Api, make_tenant: Tenant
) -> None:
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/networks", headers=acme.headers, json={"name": "web", "cidr": "10.7.0.0/24"}
    )
    assert r.status_code == 201, r.text
    net = r.json()["id"]
    r = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "w", "flavor": "s1.small", "count": 3, "networks": ["web"]},
    )
    assert r.status_code == 201, r.text
    ports = {p["id"] for p in api.ports_of(r.json()["items"], acme.headers)}
    assert set(_dhcp_of_ports(api, ports).values()) == {("10.7.0.1",)}
    r = api.client.patch(f"/api/v1/networks/{net}", headers=acme.headers, json={"dhcp": False})
    assert r.status_code == 200, r.text
    # No service, no DHCP: the anti-spoofing stops letting the ports ask anyone.
    assert set(_dhcp_of_ports(api, ports).values()) == {()}
    r = api.client.patch(f"/api/v1/networks/{net}", headers=acme.headers, json={"dhcp": True})
    assert r.status_code == 200, r.text
    assert set(_dhcp_of_ports(api, ports).values()) == {("10.7.0.1",)}
    r = api.client.post(
        f"/api/v1/networks/{net}/subnets", headers=acme.headers, json={"cidr": "10.9.0.0/24"}
    )
    assert r.status_code == 201, r.text
    assert set(_dhcp_of_ports(api, ports).values()) == {("10.7.0.1", "10.9.0.1")}
