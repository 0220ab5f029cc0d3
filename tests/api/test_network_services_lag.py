"""The network node's applied generation in the API: lag while a change is pending.

The agent runs against the real store; the node is an in-memory stand-in that
records what it was given (the real node is exercised in tests/lab).
"""

from __future__ import annotations

from collections.abc import Callable

from fuyun.agent.netservices import NetworkServicesAgent, StoreNetworkServices
from fuyun.config import Settings
from tests.api.conftest import Api, TenantAccount
from tests.support.memory_node import MemoryNode


def test_get_network_shows_what_the_node_runs_and_the_lag(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": "web", "cidr": "10.5.0.0/24", "module": "sz1-m01", "tenant_id": acme.id},
    )
    network = r.json()
    assert network["services_applied_generation"] == 0  # nothing runs it yet
    agent = NetworkServicesAgent(
        StoreNetworkServices(api.db, Settings(database_url=api.db.url)), MemoryNode({"sz1-m01"})
    )
    agent.reconcile()

    def now() -> dict[str, int]:
        got = api.client.get(f"/api/v1/networks/{network['id']}", headers=acme.headers).json()
        return {"want": got["generation"], "runs": got["services_applied_generation"]}

    first = now()
    assert first["runs"] == first["want"] >= 1
    r = api.client.post(
        "/api/v1/vms", headers=acme.headers,
        json={"name": "w", "flavor": "s1.small", "networks": ["web"]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    lagging = now()
    assert lagging["want"] > lagging["runs"] == first["runs"]  # the new VM's reservation
    agent.reconcile()
    assert now()["runs"] == now()["want"]
