"""The network node's applied generation in the API: lag while a change is pending.

The agent runs against the real store; the node is an in-memory stand-in that
records what it was given (the real node is exercised in tests/lab).
"""

from __future__ import annotations

from collections.abc import Callable

from fuyun.agent.netservices import NetworkServicesAgent, StoreNetworkServices
from fuyun.config import Settings
from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.service import NetworkService
from tests.api.conftest import Api, TenantAccount


class MemoryNode:
    def __init__(self) -> None:
        self.running: dict[str, NetworkService] = {}
        self.routed: dict[str, LeakPath] = {}

    def modules(self) -> set[str]:
        return {"sz1-m01"}

    def applied(self) -> dict[str, NetworkService]:
        return dict(self.running)

    def apply(self, svc: NetworkService) -> None:
        self.running[svc.network_id] = svc

    def remove(self, network_id: str) -> None:
        self.running.pop(network_id)

    def applied_leaks(self) -> dict[str, LeakPath]:
        return dict(self.routed)

    def apply_leak(self, path: LeakPath) -> None:
        self.routed[path.leak_id] = path

    def remove_leak(self, leak_id: str) -> None:
        self.routed.pop(leak_id)


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
        StoreNetworkServices(api.db, Settings(database_url=api.db.url)), MemoryNode()
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
