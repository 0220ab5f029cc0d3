"""Module links through the inventory API: two modules of one site, validated, audited."""

from __future__ import annotations

from tests.api.conftest import Api


def test_module_links_join_two_modules_of_one_site_only(api: Api) -> None:
    modules = api.client.get("/api/v1/modules", headers=api.op).json()["items"]
    by_site: dict[str, list[str]] = {}
    for m in modules:
        by_site.setdefault(m["site_id"], []).append(m["name"])
    a, b = (names[0] for names in list(by_site.values())[:2])
    r = api.client.post(
        "/api/v1/module-links",
        headers=api.op,
        json={"name": "x-site", "module_a": a, "module_b": b, "l2_extension": "direct"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "module_b"
    assert "join sites with an interconnect" in r.json()["error"]["message"]
    r = api.client.post(
        "/api/v1/module-links",
        headers=api.op,
        json={"name": "self", "module_a": a, "module_b": a},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "module_b"
    r = api.client.post(
        "/api/v1/module-links",
        headers=api.op,
        json={"name": "ghost", "module_a": a, "module_b": "no-such-module"},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "module_b"
    assert api.client.get("/api/v1/module-links", headers=api.op).json()["items"] == []
