"""Host agent credentials and the agent API: one host's state only, watch, report."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from fuyun.store.models import DeviceState
from tests.api.conftest import Api, TenantAccount


def _vswitch_hosts(api: Api) -> list[str]:
    modules = api.client.get("/api/v1/modules", headers=api.op).json()["items"]
    names = []
    for m in modules:
        if m["enforcement_point"] == "vswitch":
            hosts = api.client.get(
                "/api/v1/hosts", headers=api.op, params={"module": m["name"], "limit": 10}
            ).json()["items"]
            names += [h["name"] for h in hosts]
    assert len(names) >= 2, "the small fabric has a vswitch module"
    return names


def _credential(api: Api, host: str) -> dict[str, Any]:
    r = api.client.post(f"/api/v1/hosts/{host}/agent-credentials", headers=api.op)
    assert r.status_code == 201, r.text
    return r.json()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _stage(api: Api, t: TenantAccount, hosts: list[str]) -> str:
    """A network, a group and one VM (in the group) on each of ``hosts``; the group's id."""
    r = api.client.post(
        "/api/v1/networks",
        headers=t.headers,
        json={"name": "app", "cidr": "10.9.0.0/24", "site": hosts[0].split("-")[0]},
    )
    assert r.status_code == 201, r.text
    sg = api.client.post("/api/v1/security-groups", headers=t.headers, json={"name": "web"})
    assert sg.status_code == 201, sg.text
    for i, host in enumerate(hosts):
        r = api.client.post(
            "/api/v1/vms",
            headers=api.op,
            json={
                "name": f"vm{i}",
                "flavor": "s1.small",
                "host": host,
                "tenant_id": t.id,
                "networks": ["app"],
                "security_groups": ["web"],
            },
        )
        assert r.status_code == 201, r.text
    return str(sg.json()["id"])


def test_an_agent_reads_and_reports_only_its_own_host(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    mine, other = _vswitch_hosts(api)[:2]
    t = make_tenant("studio")
    _stage(api, t, [mine, other])
    cred = _credential(api, mine)
    assert cred["token"].startswith("fyh_") and cred["host"] == mine
    agent = _bearer(cred["token"])

    own = api.client.get(f"/api/v1/agent/hosts/{mine}/desired-state", headers=agent)
    assert own.status_code == 200, own.text
    state = own.json()
    assert state["full"] and state["devices"]
    assert {d["device_name"] for d in state["devices"]} == {mine}

    # Another host's state, by name or id: refused.
    r = api.client.get(f"/api/v1/agent/hosts/{other}/desired-state", headers=agent)
    assert r.status_code == 403
    assert r.json()["error"]["field"] == "host"
    assert (
        api.client.get(
            f"/api/v1/agent/hosts/{other}/watch",
            headers=agent,
            params={"since": state["token"], "timeout_s": 0},
        ).status_code
        == 403
    )

    # The general API does not know the agent credential at all.
    for path in ("/api/v1/vms", "/api/v1/hosts", "/api/v1/devices", "/api/v1/tenants"):
        assert api.client.get(path, headers=agent).status_code == 401, path
    r = api.client.post("/api/v1/tenants", headers=agent, json={"name": "evil"})
    assert r.status_code == 401

    # Reporting for a device of another host through its own URL: refused, nothing moves.
    with api.db.read_session() as s:
        foreign = s.scalar(select(DeviceState).where(DeviceState.device_name == other))
        assert foreign is not None
    r = api.client.post(
        f"/api/v1/agent/hosts/{mine}/applied",
        headers=agent,
        json={
            "devices": [
                {
                    "id": str(foreign.id),
                    "generation": foreign.desired_generation,
                    "digest": foreign.digest,
                }
            ]
        },
    )
    assert r.status_code == 404
    with api.db.read_session() as s:
        assert s.get(DeviceState, foreign.id).applied_generation == foreign.applied_generation


def test_tenants_cannot_use_agent_endpoints_and_revoked_credentials_stop(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    host = _vswitch_hosts(api)[0]
    t = make_tenant("curious")
    r = api.client.get(f"/api/v1/agent/hosts/{host}/desired-state", headers=t.headers)
    assert r.status_code == 403
    r = api.client.post(f"/api/v1/hosts/{host}/agent-credentials", headers=t.headers)
    assert r.status_code == 403
    cred = _credential(api, host)
    # Operators may read any host (to debug an agent).
    assert (
        api.client.get(f"/api/v1/agent/hosts/{host}/desired-state", headers=api.op).status_code
        == 200
    )
    listed = api.client.get(f"/api/v1/hosts/{host}/agent-credentials", headers=api.op).json()
    assert [c["id"] for c in listed] == [cred["id"]] and "token" not in listed[0]
    assert (
        api.client.delete(f"/api/v1/agent-credentials/{cred['id']}", headers=api.op).status_code
        == 204
    )
    r = api.client.get(f"/api/v1/agent/hosts/{host}/desired-state", headers=_bearer(cred["token"]))
    assert r.status_code == 401
    assert (
        api.client.get(
            f"/api/v1/agent/hosts/{host}/desired-state", headers=_bearer("fyh_" + "x" * 40)
        ).status_code
        == 401
    )


def test_watch_report_and_drift(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    host = _vswitch_hosts(api)[0]
    t = make_tenant("watcher")
    sg_id = _stage(api, t, [host])
    agent = _bearer(_credential(api, host)["token"])
    full = api.client.get(f"/api/v1/agent/hosts/{host}/desired-state", headers=agent).json()
    token = full["token"]

    quiet = api.client.get(
        f"/api/v1/agent/hosts/{host}/watch", headers=agent, params={"since": token, "timeout_s": 0}
    ).json()
    assert quiet["changed"] is False and quiet["devices"] == [] and quiet["token"] == token

    r = api.client.post(
        f"/api/v1/security-groups/{sg_id}/rules",
        headers=t.headers,
        json={"direction": "ingress", "protocol": "tcp", "port_min": 22, "port_max": 22},
    )
    assert r.status_code == 201, r.text
    changed = api.client.get(
        f"/api/v1/agent/hosts/{host}/watch", headers=agent, params={"since": token, "timeout_s": 5}
    ).json()
    assert changed["changed"] is True and changed["full"] is False
    [dev] = changed["devices"]
    before = {d["id"]: d for d in full["devices"]}[dev["id"]]
    assert dev["desired_generation"] == before["desired_generation"] + 1
    assert dev["digest"] != before["digest"]

    # The host's other documents (its port map) are in force: only the changed one lags.
    others = [
        {"id": d["id"], "generation": d["desired_generation"], "digest": d["digest"]}
        for d in full["devices"]
        if d["id"] != dev["id"]
    ]
    # A report with the old digest does not count as applying the new generation.
    stale = {"id": dev["id"], "generation": dev["desired_generation"], "digest": before["digest"]}
    r = api.client.post(
        f"/api/v1/agent/hosts/{host}/applied", headers=agent, json={"devices": [*others, stale]}
    )
    assert r.status_code == 200 and [d["id"] for d in r.json()["lagging"]] == [dev["id"]]
    good = {
        "id": dev["id"],
        "generation": dev["desired_generation"],
        "digest": dev["digest"],
        "drift": {"extra_flows": 2},
    }
    r = api.client.post(
        f"/api/v1/agent/hosts/{host}/applied", headers=agent, json={"devices": [good]}
    )
    assert r.status_code == 200 and r.json()["lagging"] == []
    with api.db.read_session() as s:
        row = s.get(DeviceState, uuid.UUID(dev["id"]))
        assert row.applied_generation == row.desired_generation
        assert row.drift == {"extra_flows": 2} and row.reported_at is not None
    # Applied generations only move forward.
    older = {**good, "generation": 1, "drift": None}
    api.client.post(f"/api/v1/agent/hosts/{host}/applied", headers=agent, json={"devices": [older]})
    with api.db.read_session() as s:
        row = s.get(DeviceState, uuid.UUID(dev["id"]))
        assert row.applied_generation == dev["desired_generation"]


def test_a_token_the_api_did_not_issue_is_422(api: Api) -> None:
    host = _vswitch_hosts(api)[0]
    agent = _bearer(_credential(api, host)["token"])
    for bad in ("nonsense", "v1.!!!", "v1." + "A" * 40):
        r = api.client.get(
            f"/api/v1/agent/hosts/{host}/watch",
            headers=agent,
            params={"since": bad, "timeout_s": 0},
        )
        assert r.status_code == 422, bad
        assert r.json()["error"]["field"] == "since"


def test_the_agent_reads_the_same_documents_over_the_api_as_from_the_store(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    from fuyun.agent import StoreSource
    from fuyun.agent.api_source import ApiSource

    mine, other = _vswitch_hosts(api)[:2]
    _stage(api, make_tenant("studio"), [mine, other])
    cred = _credential(api, mine)
    api.client.headers["Authorization"] = f"Bearer {cred['token']}"
    try:
        source = ApiSource([""], cred["token"], wait_s=0, client=api.client)
        over_api = source.desired(mine)
        assert {d.enforcement_point for d in over_api} >= {"vswitch", "ports"}
        assert over_api == sorted(
            StoreSource(api.db).desired(mine), key=lambda d: d.enforcement_point
        )
        doc = next(d for d in over_api if d.enforcement_point == "vswitch")
        source.report(mine, "vswitch", doc.generation, doc.digest, ("flow missing",))
    finally:
        del api.client.headers["Authorization"]
    with api.db.read_session() as s:
        row = s.scalars(
            select(DeviceState).where(
                DeviceState.device_name == mine, DeviceState.enforcement_point == "vswitch"
            )
        ).one()
        assert row.applied_generation == doc.generation
        assert row.drift == {"differences": ["flow missing"]}
