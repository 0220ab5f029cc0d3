"""Security groups, rules, global rules, device state and verify through the API."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from fuyun.drivers.network.sim import SimNetworkDriver
from fuyun.policy.render.nxos_parse import parse_nxos
from fuyun.services.reconcile import reconcile_once
from fuyun.store.models import DeviceState, Module
from tests.api.conftest import Api, TenantAccount

Tenant = Callable[..., TenantAccount]


def _group(api: Api, t: TenantAccount, name: str) -> dict[str, Any]:
    r = api.client.post("/api/v1/security-groups", headers=t.headers, json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


def _rule(api: Api, t: TenantAccount, group_id: str, **body: Any) -> Any:
    return api.client.post(
        f"/api/v1/security-groups/{group_id}/rules", headers=t.headers, json=body
    )


def _stage(api: Api, t: TenantAccount, cidr: str = "10.1.0.0/24") -> dict[str, Any]:
    api.client.post(
        "/api/v1/networks", headers=t.headers, json={"name": "app", "cidr": cidr, "site": "sz1"}
    )
    web, db = _group(api, t, "web"), _group(api, t, "db")
    assert (
        _rule(
            api, t, web["id"], direction="ingress", protocol="tcp", port_min=80, port_max=443
        ).status_code
        == 201
    )
    assert _rule(api, t, web["id"], direction="egress").status_code == 201
    assert (
        _rule(
            api, t, db["id"], direction="ingress", protocol="tcp", port_min=5432, remote_group="web"
        ).status_code
        == 201
    )
    vms = {}
    for name, group in (("w", "web"), ("d", "db")):
        r = api.client.post(
            "/api/v1/vms",
            headers=t.headers,
            json={
                "name": name,
                "flavor": "s1.small",
                "networks": ["app"],
                "security_groups": [group],
            },
        )
        assert r.status_code == 201, r.text
        vms[name] = r.json()["items"][0]
    return {"web": web, "db": db, "vms": vms}


def test_rules_are_validated_naming_the_field(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    g = _group(api, acme, "web")
    for body, field in (
        ({"direction": "ingress", "protocol": "tcp", "port_min": 70000}, "port_min"),
        ({"direction": "sideways"}, "direction"),
        ({"direction": "ingress", "remote_cidr": "10.0.0.0/33"}, "remote_cidr"),
        ({"direction": "ingress", "remote_cidr": "2001:db8::/32"}, "remote_cidr"),
        ({"direction": "ingress", "protocol": "icmp", "port_min": 22}, "port_min"),
        ({"direction": "ingress", "protocol": "tcp", "port_min": 90, "port_max": 80}, "port_max"),
    ):
        r = _rule(api, acme, g["id"], **body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field, (body, r.json())
    r = _rule(api, acme, g["id"], direction="ingress", remote_group="nope")
    assert r.status_code == 404 and r.json()["error"]["field"] == "remote_group"


def test_rule_quota(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme", rules=2)
    g = _group(api, acme, "web")
    assert _rule(api, acme, g["id"], direction="ingress").status_code == 201
    assert _rule(api, acme, g["id"], direction="egress").status_code == 201
    r = _rule(api, acme, g["id"], direction="ingress", protocol="tcp", port_min=22)
    assert r.status_code == 409 and r.json()["error"]["field"] == "rules"


def test_a_rule_change_recompiles_only_affected_devices(api: Api, make_tenant: Tenant) -> None:
    acme, other = make_tenant("acme"), make_tenant("other")
    stage = _stage(api, acme)
    _stage(api, other, "10.1.0.0/24")
    before = {
        d["device_name"]: d["desired_generation"]
        for d in api.client.get("/api/v1/devices", headers=api.op).json()
    }
    assert before, "devices got desired state when the VMs were created"
    web_host = api.client.get(f"/api/v1/vms/{stage['vms']['w']['id']}", headers=api.op).json()
    host = api.client.get(f"/api/v1/hosts/{web_host['host_id']}", headers=api.op).json()["name"]
    assert (
        _rule(
            api,
            acme,
            stage["web"]["id"],
            direction="ingress",
            protocol="tcp",
            port_min=22,
            remote_cidr="203.0.113.0/24",
        ).status_code
        == 201
    )
    after = {
        d["device_name"]: d["desired_generation"]
        for d in api.client.get("/api/v1/devices", headers=api.op).json()
    }
    changed = {n for n in after if after[n] != before.get(n)}
    assert host in changed
    others_hosts = set()
    for vm in api.client.get("/api/v1/vms", headers=api.op, params={"tenant_id": other.id}).json()[
        "items"
    ]:
        others_hosts.add(
            api.client.get(f"/api/v1/hosts/{vm['host_id']}", headers=api.op).json()["name"]
        )
    assert not (changed & (others_hosts - {host})), "another tenant's hosts were untouched"
    lag = api.client.get("/api/v1/devices", headers=api.op, params={"lagging": True}).json()
    assert {d["device_name"] for d in lag} >= changed


def test_verify_proves_isolation_and_finds_a_corrupted_rule(api: Api, make_tenant: Tenant) -> None:
    acme, other = make_tenant("acme"), make_tenant("other")
    _stage(api, acme)
    _stage(api, other, "10.1.0.0/24")  # the same range, in another VRF
    report = api.client.get("/api/v1/verify", headers=api.op).json()
    assert report["ok"] is True, report
    assert report["cross_tenant"] == [] and report["leaks"] == []
    assert report["endpoints"] == 4
    pairs = {(p["src_tenant"], p["dst_tenant"], tuple(p["services"])) for p in report["reachable"]}
    assert ("acme", "acme", ("tcp/5432",)) in pairs  # web -> db on 5432 only
    assert all(s == d for s, d, _ in pairs)
    assert api.client.get("/api/v1/verify", headers=acme.headers).status_code == 403

    # Corrupt one compiled rule: db's ingress now takes anything from anywhere.
    with api.db.write_session() as s:
        for row in s.scalars(select(DeviceState)):
            ir = copy.deepcopy(row.ir)
            changed = False
            # Ports with the same rules share one list of the document ("rl").
            for rule_list in ir.get("rl", []):
                for rule in rule_list["in"]:
                    if rule["m"]["lo"] == 5432:
                        rule["m"].update(lo=None, hi=None, p="any", set=None)
                        changed = True
            if changed:
                row.ir = ir
    report = api.client.get("/api/v1/verify", headers=api.op).json()
    assert report["ok"] is False
    assert report["leaks"], report
    assert any(
        s.startswith("tcp/") and s != "tcp/5432"
        for leak in report["leaks"]
        for s in leak["services"]
    )
    assert all(leak["allowed_by"] for leak in report["leaks"])


def test_global_rules_are_for_operators_and_apply_everywhere(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    _stage(api, acme)
    r = api.client.post(
        "/api/v1/global-rules",
        headers=acme.headers,
        json={
            "action": "allow",
            "direction": "ingress",
            "protocol": "icmp",
            "remote_cidr": "192.0.2.0/24",
        },
    )
    assert r.status_code == 403
    r = api.client.post(
        "/api/v1/global-rules",
        headers=api.op,
        json={"action": "deny", "direction": "ingress", "protocol": "tcp", "port_min": 5432},
    )
    assert r.status_code == 201
    report = api.client.get("/api/v1/verify", headers=api.op).json()
    assert report["ok"] is True
    assert not any("tcp/5432" in p["services"] for p in report["reachable"]), (
        "a global deny beats the tenant's allow"
    )
    assert (
        api.client.delete(f"/api/v1/global-rules/{r.json()['id']}", headers=api.op).status_code
        == 204
    )


def test_a_group_in_use_cannot_be_deleted(api: Api, make_tenant: Tenant) -> None:
    acme = make_tenant("acme")
    stage = _stage(api, acme)
    r = api.client.delete(f"/api/v1/security-groups/{stage['db']['id']}", headers=acme.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "group_in_use"
    r = api.client.delete(f"/api/v1/security-groups/{stage['web']['id']}", headers=acme.headers)
    assert r.status_code == 409  # on a port, and db's rule refers to it


def test_a_deleted_vms_guest_policy_goes_with_it(api: Api, make_tenant: Tenant) -> None:
    with api.db.write_session() as s:
        for module in s.scalars(select(Module)):
            module.enforcement_point = "vm-iptables"
    acme = make_tenant("acme")
    staged = _stage(api, acme)

    def guests() -> dict[str, int]:
        with api.db.read_session() as s:
            rows = s.scalars(select(DeviceState).where(DeviceState.device_type == "guest"))
            return {r.device_name: len(r.ir["ports"]) for r in rows}

    ports = {
        vm: api.client.get(f"/api/v1/ports?vm_id={v['id']}", headers=acme.headers).json()["items"]
        for vm, v in staged["vms"].items()
    }
    assert guests() == {ports["w"][0]["id"]: 1, ports["d"][0]["id"]: 1}
    r = api.client.delete(f"/api/v1/vms/{staged['vms']['w']['id']}", headers=acme.headers)
    assert r.status_code == 200, r.text
    assert guests() == {ports["d"][0]["id"]: 1}, "the deleted NIC's guest policy is gone"
    assert api.client.get("/api/v1/verify", headers=api.op).json()["ok"] is True


def test_a_tor_keeps_every_hosts_entries_when_one_hosts_group_changes(
    api: Api, make_tenant: Tenant
) -> None:
    with api.db.write_session() as s:
        for module in s.scalars(select(Module)):
            module.enforcement_point = "tor-acl"
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/server-groups",
        headers=acme.headers,
        json={"name": "apart", "policy": "anti-affinity", "level": "host"},
    )
    assert r.status_code == 201, r.text
    api.client.post(
        "/api/v1/networks", headers=acme.headers, json={"name": "app", "cidr": "10.1.0.0/24"}
    )
    web, db = _group(api, acme, "web"), _group(api, acme, "db")
    placed = {}
    for name, group in (("w", "web"), ("d", "db")):
        r = api.client.post(
            "/api/v1/vms",
            headers=acme.headers,
            json={
                "name": name,
                "flavor": "s1.small",
                "networks": ["app"],
                "security_groups": [group],
                "group": "apart",
            },
        )
        assert r.status_code == 201, r.text
        placed[name] = api.client.get(
            f"/api/v1/vms/{r.json()['items'][0]['id']}", headers=api.op
        ).json()
    assert placed["w"]["host_id"] != placed["d"]["host_id"]

    def tor_ports() -> set[str]:
        with api.db.read_session() as s:
            rows = s.scalars(select(DeviceState).where(DeviceState.device_type == "switch"))
            return {p["port"] for r in rows for p in r.ir["ports"]}

    both = tor_ports()
    assert len(both) == 2, "one ToR enforces for both hosts"
    # A rule on web touches web's host only; the ToR must still hold db's entries.
    assert (
        _rule(api, acme, web["id"], direction="ingress", protocol="tcp", port_min=22).status_code
        == 201
    )
    assert tor_ports() == both
    assert (
        _rule(api, acme, db["id"], direction="ingress", protocol="udp", port_min=53).status_code
        == 201
    )
    assert tor_ports() == both
    assert api.client.get("/api/v1/verify", headers=api.op).json()["ok"] is True


def test_a_two_network_tenants_tor_config_routes_both_subnets_in_its_vrf(
    api: Api, make_tenant: Tenant
) -> None:
    api.enforce_at_tors()
    acme = make_tenant("acme")
    gateways = {}
    for name, cidr in (("front", "10.1.0.0/24"), ("back", "10.2.0.0/24")):
        r = api.client.post(  # one module, so one VM can have a NIC on both
            "/api/v1/networks",
            headers=api.op,
            json={"name": name, "cidr": cidr, "module": "sz1-m01", "tenant_id": acme.id},
        )
        assert r.status_code == 201, r.text
        subnets = api.client.get(
            f"/api/v1/networks/{r.json()['id']}/subnets", headers=acme.headers
        ).json()
        gateways[name] = (subnets[0]["gateway"], cidr.split("/")[1])
    r = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "router-test", "flavor": "s1.small", "networks": ["front", "back"]},
    )
    assert r.status_code == 201, r.text
    nics = api.client.get(
        f"/api/v1/ports?vm_id={r.json()['items'][0]['id']}", headers=acme.headers
    ).json()["items"]
    vlan_of = {n["network_id"]: n["vlan"] for n in nics}
    tors = [
        d
        for d in api.client.get("/api/v1/devices", headers=api.op).json()
        if d["device_type"] == "switch"
    ]
    assert len(tors) == 1
    config = api.client.get(
        f"/api/v1/devices/switch/{tors[0]['device_name']}", headers=api.op
    ).json()
    parsed = parse_nxos(config["rendered"])
    assert len(parsed.vrfs) == 1, "one tenant, one VRF"
    # The ToR's text is printed when read, off the request path; the reconciler applies it.
    with api.db.read_session() as s:
        row = s.scalars(select(DeviceState).where(DeviceState.device_type == "switch")).one()
        assert row.rendered == "" and row.ir
    driver = SimNetworkDriver()
    assert reconcile_once(api.db, driver).applied >= 1
    assert driver.config("switch", tors[0]["device_name"], "tor-acl") == config["rendered"]
    vrf = parsed.vrfs[0]
    networks = {
        n["name"]: n["id"]
        for n in api.client.get("/api/v1/networks", headers=acme.headers).json()["items"]
    }
    assert parsed.svis == {
        vlan_of[networks[name]]: (vrf, (f"{gw}/{length}",))
        for name, (gw, length) in gateways.items()
    }
