"""POST /api/v1/plans: JSON answers for operators, 403 for partners, 422 naming the field."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from fuyun.store.models import Host
from tests.api.conftest import Api, TenantAccount

SMALL = {"steps": 3, "tenants": 4, "new_tenants_per_step": 2}


def test_an_operator_plans_on_the_live_store(api: Api) -> None:
    r = api.client.post(
        "/api/v1/plans",
        headers=api.op,
        json={"scenario": {"name": "steady", **SMALL}, "nplus1_limit": 5},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "live" and body["scenario"] == "steady"
    assert len(body["timeline"]) == 3
    assert {"vcpu", "ram", "density", "nic", "ip", "vlans"} <= set(body["timeline"][0])
    assert body["timeline"][-1]["vms"] == body["placed"]
    assert {w["growth"] for w in body["strategies"]} == {"secondary", "new-vlan", "refuse"}
    assert [r["rank"] for r in body["remedies"]] == list(range(1, len(body["remedies"]) + 1))
    assert body["nplus1"]["checked"]["host"] <= 5
    assert body["modules"] and body["switches"]


def test_a_what_if_compares_two_fabrics_side_by_side(api: Api) -> None:
    r = api.client.post(
        "/api/v1/plans",
        headers=api.op,
        json={
            "fabric": {"name": "small"},
            "compare_with": {"name": "small", "all_switched": True},
            "scenario": {"name": "viral-app", **SMALL},
            "nplus1": False,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fabrics"] == ["small", "small with switched-clos (TRILL)"]
    fabrics_a = {m["fabric"] for m in body["a"]["modules"]}
    assert fabrics_a == {"routed-clos", "switched-clos"}
    assert {m["fabric"] for m in body["b"]["modules"]} == {"switched-clos"}
    assert set(body["delta"]) >= {"placed", "unplaced", "pushed_steps", "spills"}


def test_partners_may_not_plan(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    studio = make_tenant("studio")
    r = api.client.post("/api/v1/plans", headers=studio.headers, json={})
    assert r.status_code == 403
    assert api.client.get("/api/v1/plans/presets", headers=studio.headers).status_code == 403


def test_bad_input_names_the_field(api: Api) -> None:
    cases = [
        ({"scenario": {"steps": 0}}, "scenario.steps"),
        ({"scenario": {"name": "doomsday"}}, "scenario.name"),
        ({"fabric": {"name": "atlantis"}}, "fabric"),
        ({"scenario": {"flavors": [["m9.huge", 1]]}}, "scenario.flavors"),
        ({"fabric": {"name": "small", "add_site_like": "nowhere"}}, "site"),
        ({"fabric": {"yaml": "sites: [\n"}}, None),
        ({"fabric": {"yaml": "/etc/hostname"}}, None),  # text, never a server-side path
    ]
    for body, field in cases:
        r = api.client.post("/api/v1/plans", headers=api.op, json=body)
        assert r.status_code == 422, (body, r.text)
        if field is not None:
            assert r.json()["error"]["field"] == field, (body, r.json())


def test_presets_list_scenarios_and_fabrics(api: Api) -> None:
    r = api.client.get("/api/v1/plans/presets", headers=api.op)
    assert r.status_code == 200
    assert set(r.json()["scenarios"]) == {"steady", "viral-app", "1p4v-to-1p10v"}
    assert r.json()["fabrics"][0] == "live"


def test_a_fabric_document_is_planned_as_given(api: Api) -> None:
    from fuyun.fabric.generator import generate
    from fuyun.fabric.yamlio import dump_fabric

    text = dump_fabric(generate("small", seed=5))
    r = api.client.post(
        "/api/v1/plans",
        headers=api.op,
        json={"fabric": {"yaml": text}, "scenario": SMALL, "remedies": False, "nplus1": False},
    )
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "fabric YAML" and r.json()["fabric"] == "small"


def test_a_store_a_fabric_file_cannot_describe_is_a_409_not_a_500(api: Api) -> None:
    r = api.client.post(
        "/api/v1/server-models",
        headers=api.op,
        json={"name": "tiny-ram", "cores": 1, "ram_mb": 512, "disk_gb": 10},
    )
    assert r.status_code == 201, r.text  # the inventory takes it; a fabric file cannot say it
    r = api.client.post("/api/v1/plans", headers=api.op, json={"scenario": SMALL})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "fabric_unexportable"


def test_a_plan_run_is_stored_and_read_back_until_the_inventory_changes(api: Api) -> None:
    assert api.client.get("/api/v1/plans/latest", headers=api.op).status_code == 404
    r = api.client.post(
        "/api/v1/plans",
        headers=api.op,
        json={"scenario": {"name": "steady", **SMALL}, "nplus1": False},
    )
    assert r.status_code == 200, r.text
    run_id = r.json()["run_id"]
    latest = api.client.get("/api/v1/plans/latest", headers=api.op).json()
    assert latest["id"] == run_id and latest["stale"] is False
    assert latest["parameters"]["scenario"] == "steady"
    assert latest["parameters"]["overrides"]["steps"] == 3
    assert latest["summary"]["placed"] == r.json()["placed"]
    assert latest["plan"]["timeline"] == r.json()["timeline"]
    assert latest["basis"]["live"] is True and latest["basis"]["hosts"] > 0

    # A host fewer in the live inventory: the stored plan says it is stale, and is not redone.
    with api.db.write_session() as s:
        host = s.scalars(select(Host)).first()
        assert host is not None
        s.delete(host)
    again = api.client.get("/api/v1/plans/latest", headers=api.op).json()
    assert again["id"] == run_id and again["stale"] is True
    assert again["current_basis"]["hosts"] == latest["basis"]["hosts"] - 1


def test_a_plan_of_a_preset_never_goes_stale(api: Api) -> None:
    r = api.client.post(
        "/api/v1/plans",
        headers=api.op,
        json={"fabric": {"name": "small"}, "scenario": {"name": "steady", **SMALL}},
    )
    assert r.status_code == 200, r.text
    latest = api.client.get("/api/v1/plans/latest", headers=api.op).json()
    assert latest["basis"] == {"live": False} and latest["stale"] is False
