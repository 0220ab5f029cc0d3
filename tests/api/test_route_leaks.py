"""Route leaks over the API: requested by a side, in force only after an operator approves.

Three tenants on a ToR-enforced module: ``acme`` (10.61.0.0/24), ``bolt``
(10.62.0.0/24) and ``copy``, which reuses acme's range in its own VRF. The ToR's
configuration is read back (NX-OS style, parsed) after each step.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from fuyun.policy.render.nxos_parse import parse_nxos
from fuyun.store.models import AuditEvent, Host, Module, Port, Switch
from tests.api.conftest import Api, TenantAccount
from tests.support.capabilities import missing

Tenant = Callable[..., TenantAccount]
URL = "/api/v1/route-leaks"


def _network(api: Api, who: TenantAccount, name: str, cidr: str) -> dict[str, Any]:
    r = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": name, "cidr": cidr, "module": "sz1-m01", "tenant_id": who.id},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _vm(api: Api, who: TenantAccount, name: str, network: str) -> None:
    r = api.client.post(
        "/api/v1/vms",
        headers=who.headers,
        json={"name": name, "flavor": "s1.small", "networks": [network]},
    )
    assert r.status_code == 201, r.text


def _routes(api: Api) -> set[tuple[str, str, str, str]]:
    out: set[tuple[str, str, str, str]] = set()
    for d in api.client.get("/api/v1/devices", headers=api.op).json():
        if d["device_type"] == "switch":
            r = api.client.get(f"/api/v1/devices/switch/{d['device_name']}", headers=api.op)
            out |= parse_nxos(r.json()["rendered"]).routes
    return out


def _approved(api: Api, network: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """A leak an operator creates approved."""
    r = api.client.post(
        URL,
        headers=api.op,
        json={"network_id": network["id"], "peer_network_id": peer["id"], "approve": True},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def world(api: Api, make_tenant: Tenant) -> dict[str, Any]:
    try:
        import ciscoconfparse2  # noqa: F401
    except ImportError as exc:
        missing("ciscoconfparse2", f"{exc} (pip install -e '.[test]')")
    with api.db.write_session() as s:
        for module in s.scalars(select(Module)):
            module.enforcement_point = "tor-acl"
        for switch in s.scalars(select(Switch)):
            switch.platform = "nxos"
    acme, bolt, copy = make_tenant("acme"), make_tenant("bolt"), make_tenant("copy")
    nets = {
        "web": _network(api, acme, "web", "10.61.0.0/24"),
        "back": _network(api, acme, "back", "10.63.0.0/24"),
        "db": _network(api, bolt, "db", "10.62.0.0/24"),
        "twin": _network(api, copy, "twin", "10.61.0.0/24"),
    }
    _vm(api, acme, "w1", "web")
    _vm(api, bolt, "d1", "db")
    return {"acme": acme, "bolt": bolt, "copy": copy, **nets}


def test_a_request_routes_nothing_until_an_operator_approves_and_revoke_withdraws(
    api: Api, world: dict[str, Any]
) -> None:
    acme, bolt, copy = world["acme"], world["bolt"], world["copy"]
    web, db = world["web"], world["db"]
    r = api.client.post(
        URL,
        headers=acme.headers,
        json={"network_id": web["id"], "peer_network_id": db["id"], "description": "reports"},
    )
    assert r.status_code == 201, r.text
    leak = r.json()
    assert leak["state"] == "pending" and leak["requested_by"] == "acme-admin"
    assert (leak["prefixes"], leak["peer_prefixes"]) == (["10.61.0.0/24"], ["10.62.0.0/24"])
    assert _routes(api) == set(), "a pending leak must route nothing"

    # Both sides see it; a third tenant does not; only an operator approves.
    assert [x["id"] for x in api.client.get(URL, headers=bolt.headers).json()] == [leak["id"]]
    assert api.client.get(URL, headers=copy.headers).json() == []
    assert api.client.get(f"{URL}/{leak['id']}", headers=copy.headers).status_code == 404
    assert api.client.post(f"{URL}/{leak['id']}/approve", headers=bolt.headers).status_code == 403
    pending = api.client.get(f"{URL}?state=pending", headers=api.op).json()
    assert [x["id"] for x in pending] == [leak["id"]]

    r = api.client.post(f"{URL}/{leak['id']}/approve", headers=api.op)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["approved_by"] == "admin"
    vrf_a, vrf_b = (
        f"fy-{web['vrf_id'].replace('-', '')[:16]}",
        (f"fy-{db['vrf_id'].replace('-', '')[:16]}"),
    )
    assert _routes(api) == {
        (vrf_a, "10.62.0.0/24", "10.62.0.1", vrf_b),
        (vrf_b, "10.61.0.0/24", "10.61.0.1", vrf_a),
    }
    assert api.client.post(f"{URL}/{leak['id']}/approve", headers=api.op).status_code == 409

    # The peer's admin revokes; the routes go.
    assert api.client.delete(f"{URL}/{leak['id']}", headers=copy.headers).status_code == 404
    assert api.client.delete(f"{URL}/{leak['id']}", headers=bolt.headers).status_code == 204
    assert _routes(api) == set()
    assert api.client.get(URL, headers=api.op).json() == []
    with api.db.read_session() as s:
        actions = [
            (e.action, e.result)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.object_type == "route-leak"))
        ]
    assert ("route-leak.request", "success") in actions
    assert ("route-leak.approve", "success") in actions
    assert ("route-leak.revoke", "success") in actions
    assert ("route-leak.approve", "failure") in actions  # the tenant's attempt, refused


def test_bad_requests_are_refused_naming_the_field(api: Api, world: dict[str, Any]) -> None:
    acme = world["acme"]
    web, back, db, twin = world["web"], world["back"], world["db"], world["twin"]

    def ask(who: dict[str, str], **body: Any) -> tuple[int, dict[str, Any]]:
        r = api.client.post(URL, headers=who, json=body)
        return r.status_code, r.json().get("error", r.json())

    code, err = ask(acme.headers, network_id=web["id"], peer_network_id=twin["id"])
    assert code == 409 and err["field"] == "peer_network_id"
    assert "ambiguous" in err["message"] and "10.61.0.0/24" in err["message"]
    code, err = ask(
        acme.headers, network_id=web["id"], peer_network_id="00000000-0000-0000-0000-000000000001"
    )
    assert (code, err["field"]) == (404, "peer_network_id")
    code, err = ask(acme.headers, network_id=db["id"], peer_network_id=web["id"])
    assert (code, err["field"]) == (404, "network_id")  # not acme's network
    code, err = ask(acme.headers, network_id=web["id"], peer_network_id=back["id"])
    assert (code, err["field"]) == (422, "peer_network_id")
    code, err = ask(
        acme.headers, network_id=web["id"], peer_network_id=db["id"], peer_prefix="10.99.0.0/28"
    )
    assert (code, err["field"]) == (422, "peer_prefix")
    code, err = ask(
        acme.headers, network_id=web["id"], peer_network_id=db["id"], peer_prefix="10.62.0.1/28"
    )
    assert (code, err["field"]) == (422, "peer_prefix")
    code, err = ask(acme.headers, network_id=web["id"], peer_network_id=db["id"], approve=True)
    assert code == 403  # a tenant cannot approve its own request

    # A prefix of the peer network is enough; a second leak may not bring in what
    # the first already routes into the VRF.
    code, made = ask(
        acme.headers, network_id=web["id"], peer_network_id=db["id"], peer_prefix="10.62.0.0/28"
    )
    assert code == 201 and made["peer_prefixes"] == ["10.62.0.0/28"]
    code, err = ask(acme.headers, network_id=back["id"], peer_network_id=db["id"])
    assert code == 409 and "another route leak" in err["message"]
    code, err = ask(api.op, network_id=web["id"], peer_network_id=db["id"])
    assert code == 409  # the pair exists


def test_an_operator_creates_one_approved(api: Api, world: dict[str, Any]) -> None:
    assert _approved(api, world["back"], world["db"])["state"] == "approved"
    # back has no VM yet, but its VRF is routed on the ToR (web's SVI): both ways.
    fy = {k: f"fy-{world[k]['vrf_id'].replace('-', '')[:16]}" for k in ("back", "db")}
    assert {(vrf, prefix) for vrf, prefix, *_ in _routes(api)} == {
        (fy["db"], "10.63.0.0/24"),
        (fy["back"], "10.62.0.0/24"),
    }


def test_a_subnet_added_to_a_leaked_network_is_routed_to_the_peer(
    api: Api, world: dict[str, Any]
) -> None:
    web, db = world["web"], world["db"]
    # A web VM under another ToR than every db port: only the leak can bring it the route.
    with api.db.read_session() as s:
        db_tors = set(
            s.scalars(
                select(Host.tor_id)
                .join(Port, Port.host_id == Host.id)
                .where(Port.network_id == uuid.UUID(db["id"]))
            )
        )
        found = s.execute(
            select(Host.name, Switch.name)
            .join(Module, Module.id == Host.module_id)
            .join(Switch, Switch.id == Host.tor_id)
            .where(Module.name == "sz1-m01", Host.tor_id.not_in(db_tors))
            .order_by(Host.name)
        ).first()
    assert found is not None
    elsewhere, tor = found
    r = api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={"name": "w2", "flavor": "s1.small", "networks": [web["id"]], "host": elsewhere,
              "tenant_id": world["acme"].id},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    _approved(api, web, db)
    r = api.client.post(
        f"/api/v1/networks/{db['id']}/subnets", headers=api.op, json={"cidr": "10.64.0.0/24"}
    )
    assert r.status_code == 201, r.text
    fy = {k: f"fy-{world[k]['vrf_id'].replace('-', '')[:16]}" for k in ("web", "db")}
    # The peer VRF learns the new range at once, not at its ToR's next recompile.
    r = api.client.get(f"/api/v1/devices/switch/{tor}", headers=api.op)
    routes = parse_nxos(r.json()["rendered"]).routes
    assert (fy["web"], "10.64.0.0/24", "10.64.0.1", fy["db"]) in routes


def test_verify_sees_two_vrfs_isolated_until_a_leak_joins_them_and_names_it(
    api: Api, world: dict[str, Any]
) -> None:
    acme, bolt = world["acme"], world["bolt"]

    def group(who: TenantAccount, name: str, **rule: Any) -> None:
        r = api.client.post("/api/v1/security-groups", headers=who.headers, json={"name": name})
        assert r.status_code == 201, r.text
        r = api.client.post(
            f"/api/v1/security-groups/{r.json()['id']}/rules", headers=who.headers, json=rule
        )
        assert r.status_code == 201, r.text

    group(acme, "out", direction="egress")
    group(bolt, "pg", direction="ingress", protocol="tcp", port_min=5432,
          remote_cidr="10.61.0.0/24")  # fmt: skip
    for who, name, network, sg in ((acme, "app", "web", "out"), (bolt, "pg1", "db", "pg")):
        r = api.client.post(
            "/api/v1/vms",
            headers=who.headers,
            json={"name": name, "flavor": "s1.small", "networks": [network],
                  "security_groups": [sg]},
        )  # fmt: skip
        assert r.status_code == 201, r.text

    def across(report: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
        return [
            (p["src_tenant"], p["dst_tenant"], tuple(p["services"]))
            for p in report["via_route_leaks"] + report["cross_tenant"]
        ]

    before = api.client.get("/api/v1/verify", headers=api.op).json()
    assert before["ok"] is True and across(before) == []

    r = api.client.post(
        URL, headers=api.op,
        json={"network_id": world["web"]["id"], "peer_network_id": world["db"]["id"]},
    )  # fmt: skip
    leak = r.json()
    pending = api.client.get("/api/v1/verify", headers=api.op).json()
    assert across(pending) == [], "a pending leak must not join the VRFs"

    assert api.client.post(f"{URL}/{leak['id']}/approve", headers=api.op).status_code == 200
    after = api.client.get("/api/v1/verify", headers=api.op).json()
    assert after["ok"] is True, after  # intended: the approved leak is the path
    assert after["cross_tenant"] == []
    # Both acme VMs may send anything (w1 by its default group): each reaches pg1 on 5432.
    assert set(across(after)) == {("acme", "bolt", ("tcp/5432",))}
    for pair in after["via_route_leaks"]:
        assert f"leak {leak['id'][:8]} (web/acme <-> db/bolt)" in pair["path"]
        assert pair["dst"].startswith("10.62.0.")

    assert api.client.delete(f"{URL}/{leak['id']}", headers=acme.headers).status_code == 204
    assert across(api.client.get("/api/v1/verify", headers=api.op).json()) == []


def test_deleting_a_network_takes_its_leaks_and_their_routes(
    api: Api, world: dict[str, Any]
) -> None:
    _approved(api, world["back"], world["db"])
    assert _routes(api) != set()
    r = api.client.delete(f"/api/v1/networks/{world['back']['id']}", headers=world["acme"].headers)
    assert r.status_code == 204, r.text
    assert api.client.get(URL, headers=api.op).json() == []
    assert _routes(api) == set(), "a route outlived its network"
