"""/metrics: request latency, workflow queue, reconcile lag per host, allocation retries."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from fuyun.services.metrics import conflict_retried
from fuyun.store.models import DeviceState, Workflow
from fuyun.store.types import utcnow
from tests.api.conftest import Api, TenantAccount

# Another module's counter in the default registry appears on the same page.
OTHER = Counter("fuyun_test_other_module_total", "a counter defined elsewhere")


def _samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_latency_is_per_route_template(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    t = make_tenant("m")
    api.client.get(f"/api/v1/tenants/{t.id}", headers=api.op)
    api.client.get(f"/api/v1/vms/{uuid.uuid4()}", headers=api.op)
    samples = _samples(api)
    counts = {
        dict(labels)["route"]: v
        for (name, labels), v in samples.items()
        if name == "fuyun_http_request_duration_seconds_count"
    }
    assert counts.get("/api/v1/tenants/{tenant_id}", 0) >= 1
    assert counts.get("/api/v1/vms/{vm_id}", 0) >= 1
    assert not any(str(t.id) in route for route in counts)  # never raw ids


def test_queue_depth_age_lag_and_retries(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    t = make_tenant("lagging")
    r = api.client.post(
        "/api/v1/networks",
        headers=t.headers,
        json={"name": "n", "cidr": "10.3.0.0/24", "site": "sz1"},
    )
    assert r.status_code == 201
    r = api.client.post(
        "/api/v1/vms",
        headers=t.headers,
        json={"name": "v", "flavor": "s1.small", "networks": ["n"]},
    )
    assert r.status_code == 201, r.text
    with api.db.write_session() as s:
        s.add(
            Workflow(
                kind="vm.create",
                state="pending",
                actor="t",
                payload={},
                data={},
                created_at=utcnow(),
            )
        )
        # Nothing reconciles in this app: every device with a desired state lags.
        s.execute(update(DeviceState).values(applied_generation=0))
    OTHER.inc()
    before = _samples(api).get(
        ("fuyun_allocation_conflicts_retried_total", (("kind", "mac"),)), 0.0
    )
    conflict_retried("mac")
    samples = _samples(api)
    assert samples[("fuyun_workflow_queue_depth", (("state", "pending"),))] == 1
    assert samples[("fuyun_workflow_queue_depth", (("state", "running"),))] == 0
    assert samples[("fuyun_workflow_queue_oldest_age_seconds", (("state", "pending"),))] >= 0
    lag = {
        dict(labels)["host"]: v
        for (name, labels), v in samples.items()
        if name == "fuyun_reconcile_lag_generations"
    }
    assert lag and all(v >= 1 for v in lag.values())
    assert samples[("fuyun_reconcile_lagging_devices", ())] >= 1
    assert samples[("fuyun_allocation_conflicts_retried_total", (("kind", "mac"),))] == before + 1
    assert samples[("fuyun_test_other_module_total", ())] >= 1
