"""The operator's host page shows hypervisor drift and repairs it (in-process, fake driver).

The browser suite's server runs its own fake hypervisor, which a test cannot
change behind the store's back; here the app runs in this process, so the test
stops an instance under the portal's feet and clicks (posts) Repair.
"""

from __future__ import annotations

import re
import uuid

from tests.api.conftest import Api, api, seeded_store  # noqa: F401  (the in-process app)


def _csrf(html: str, name: str = "csrf") -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def test_host_page_shows_drift_and_repairs_it(api: Api) -> None:  # noqa: F811
    r = api.client.post(
        "/api/v1/users",
        headers=api.op,
        json={"username": "ops-drift", "role": "operator", "password": "drift-password"},
    )
    assert r.status_code == 201, r.text
    r = api.client.post("/api/v1/tenants", headers=api.op, json={"name": "dr", "quotas": {}})
    tenant = r.json()["id"]
    r = api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={"name": "drifter", "flavor": "s1.small", "tenant_id": tenant},
    )
    vm = r.json()["items"][0]
    host = api.client.get(f"/api/v1/hosts/{vm['host_id']}", headers=api.op).json()

    page = api.client.get("/signin")
    r = api.client.post(
        "/signin",
        data={"username": "ops-drift", "password": "drift-password", "csrf": _csrf(page.text)},
    )
    assert r.status_code in (200, 303), r.text
    page = api.client.get(f"/ops/hosts/{host['id']}")
    assert page.status_code == 200 and 'id="no-drift"' in page.text
    assert host["tor_port"] and f"{host['tor_port']}</dd>" in page.text  # where it is cabled

    api.driver.stop(host["name"], uuid.UUID(vm["id"]))
    page = api.client.get(f"/ops/hosts/{host['id']}")
    assert 'id="drift-table"' in page.text and "died" in page.text and "drifter" in page.text
    r = api.client.post(
        f"/ops/hosts/{host['id']}/drift",
        data={"csrf": _csrf(page.text), "action": "repair", "vm_id": vm["id"]},
    )
    assert r.status_code == 200 and "died VM" in r.text and "repaired" in r.text, r.text[-500:]
    assert 'id="no-drift"' in r.text
    status = api.driver.status(host["name"], uuid.UUID(vm["id"]))
    assert status is not None and status.power.value == "running"

    # Nonsense is answered on the page, not with a 500.
    r = api.client.post(
        f"/ops/hosts/{host['id']}/drift",
        data={"csrf": _csrf(r.text), "action": "repair", "vm_id": vm["id"]},
    )
    assert r.status_code == 409 and "no drift" in r.text
