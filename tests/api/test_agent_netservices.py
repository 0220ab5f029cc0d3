"""A network node reads its network services and route leaks over the API, as from the store.

``fuyun agent --api … --lab`` has no database: :class:`ApiNetworkServices` must give
the network-services agent exactly what :class:`StoreNetworkServices` gives, scoped
to the host credential's module, and its reports must reach the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fuyun.agent.api_source import ApiNetworkServices
from fuyun.agent.netservices import NetworkServicesAgent, StoreNetworkServices
from fuyun.config import Settings
from fuyun.domain.errors import DriverError
from tests.api.conftest import Api, TenantAccount
from tests.support.memory_node import MemoryNode

MODULE = "sz1-m01"


def _host(api: Api, module: str) -> str:
    hosts = api.client.get(
        "/api/v1/hosts", headers=api.op, params={"module": module, "limit": 1}
    ).json()["items"]
    return str(hosts[0]["name"])


def _credential(api: Api, host: str) -> str:
    r = api.client.post(f"/api/v1/hosts/{host}/agent-credentials", headers=api.op)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@pytest.fixture
def as_agent(api: Api) -> Iterator[Callable[[str], ApiNetworkServices]]:
    """A source speaking with one host's credential (the in-process client carries it)."""

    def make(host: str, modules: list[str] | None = None) -> ApiNetworkServices:
        token = _credential(api, host)
        api.client.headers["Authorization"] = f"Bearer {token}"
        return ApiNetworkServices([""], token, host, modules=modules, client=api.client)

    yield make
    api.client.headers.pop("Authorization", None)


def test_the_node_reads_over_the_api_what_the_store_gives_and_reports_back(
    api: Api, make_tenant: Callable[..., TenantAccount], as_agent: Callable[..., ApiNetworkServices]
) -> None:
    acme, bolt = make_tenant("acme"), make_tenant("bolt")
    nets = {}
    for who, name, cidr in ((acme, "web", "10.31.0.0/24"), (bolt, "db", "10.32.0.0/24")):
        r = api.client.post(
            "/api/v1/networks",
            headers=api.op,
            json={"name": name, "cidr": cidr, "module": MODULE, "tenant_id": who.id},
        )
        nets[name] = r.json()
    r = api.client.post(
        "/api/v1/route-leaks",
        headers=api.op,
        json={"network_id": nets["web"]["id"], "peer_network_id": nets["db"]["id"],
              "approve": True},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    store = StoreNetworkServices(api.db, Settings(database_url=api.db.url))

    source = as_agent(_host(api, MODULE))
    want = store.generations({MODULE})
    assert source.generations({MODULE}) == want and set(want) >= {n["id"] for n in nets.values()}
    web = nets["web"]["id"]
    assert source.service(web) == store.service(web)
    assert source.leaks({MODULE}) == store.leaks({MODULE}) != {}

    node = MemoryNode({"sz1-m01"})
    result = NetworkServicesAgent(source, node).reconcile()
    assert not result.errors, result.errors
    assert set(result.applied) == set(want) and len(result.leaks_applied) == 1
    api.client.headers.pop("Authorization")
    for n in nets.values():
        got = api.client.get(f"/api/v1/networks/{n['id']}", headers=api.op).json()
        assert got["services_applied_generation"] == got["generation"]


def test_a_host_credential_reads_only_its_own_modules_networks(
    api: Api, make_tenant: Callable[..., TenantAccount], as_agent: Callable[..., ApiNetworkServices]
) -> None:
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": "web", "cidr": "10.33.0.0/24", "module": MODULE, "tenant_id": acme.id},
    )
    web = r.json()["id"]
    elsewhere = as_agent(_host(api, "sh1-m01"))
    assert web not in elsewhere.generations(set())
    with pytest.raises(DriverError, match="404"):
        elsewhere.service(web)
    api.client.headers.pop("Authorization")
    nosy = as_agent(_host(api, "sh1-m01"), modules=[MODULE])
    with pytest.raises(DriverError, match="403"):
        nosy.generations({MODULE})
    # A report for a network outside the module moves nothing.
    r = api.client.post(
        f"/api/v1/agent/hosts/{_host(api, 'sh1-m01')}/network-services/applied",
        json={"generations": {web: 99}},
    )
    assert r.status_code == 200 and r.json() == {"accepted": 0}
    api.client.headers.pop("Authorization")
    assert (
        api.client.get(f"/api/v1/networks/{web}", headers=api.op).json()[
            "services_applied_generation"
        ]
        == 0
    )
