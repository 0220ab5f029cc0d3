"""A small fabric with two partners, each with a network and VMs, for attribution tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from fuyun.telemetry.bindings import load_bindings
from fuyun.telemetry.portmap import Binding
from tests.api.conftest import Api, TenantAccount, api, make_tenant, seeded_store  # noqa: F401


@dataclass
class World:
    api: Api
    a: TenantAccount
    b: TenantAccount
    ports: dict[str, Binding]  # by VM name
    host_agents: dict[str, str]  # host name -> its management address (the sFlow agent)


@pytest.fixture
def world(api: Api, make_tenant: Callable[..., TenantAccount]) -> World:  # noqa: F811
    a, b = make_tenant("sfa-studio"), make_tenant("sfb-flooder")
    for acct, prefix, cidr in ((a, "a", "10.61.0.0/24"), (b, "b", "10.62.0.0/24")):
        r = api.client.post(
            "/api/v1/networks", headers=acct.headers, json={"name": f"{prefix}-net", "cidr": cidr}
        )
        assert r.status_code == 201, r.text
        r = api.client.post(
            "/api/v1/vms",
            headers=acct.headers,
            json={
                "name": f"{prefix}vm",
                "flavor": "s1.small",
                "count": 2,
                "networks": [f"{prefix}-net"],
            },
        )
        assert r.status_code in (201, 202), r.text
    bindings, agents = load_bindings(api.db)
    ports = {b_.vm: b_ for b_ in bindings}
    assert len(ports) == 4, ports.keys()
    return World(api, a, b, ports, {host: _ip(raw) for raw, host in agents.items()})


def _ip(raw: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(raw))
