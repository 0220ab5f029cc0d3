from tests.api.conftest import Api


def test_health_and_version_need_no_token(api: Api) -> None:
    r = api.client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "sqlite"}
    assert api.client.get("/api/v1/version").json()["api"] == "v1"


def test_openapi_is_published(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/vms" in spec["paths"]
    assert "/api/v1/hosts" in spec["paths"]


def test_oversized_body_is_refused_with_413(api: Api) -> None:
    body = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    r = api.client.post(
        "/api/v1/tenants", headers={**api.op, "Content-Type": "application/json"}, content=body
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


def test_validation_errors_name_the_field(api: Api) -> None:
    r = api.client.post(
        "/api/v1/flavors",
        headers=api.op,
        json={"name": "f", "vcpus": 0, "ram_mb": 1024, "disk_gb": 10},
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid"
    assert err["field"] == "vcpus"
    assert "vcpus" in err["message"]


def test_unknown_route_is_json_404(api: Api) -> None:
    r = api.client.get("/api/v1/nothing-here", headers=api.op)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_unknown_page_is_the_portals_404_for_browsers_and_json_for_clients(api: Api) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = api.client.get("/no-such-page", headers=browser)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and "There is no such page." in page.text
    # API paths and assets stay JSON whatever the client accepts; so does a client
    # that does not ask for HTML.
    for path, headers in (
        ("/api/v1/nothing-here", browser),
        ("/static/missing.css", browser),
        ("/no-such-page", {"Accept": "application/json"}),
    ):
        r = api.client.get(path, headers=headers)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found", path
