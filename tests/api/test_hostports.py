"""Each host's port map follows VM create and delete, with generations that move on change."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from fuyun.domain.hostports import HostPorts
from fuyun.store.models import DeviceState
from tests.api.conftest import Api, TenantAccount


def _doc(api: Api, host: str) -> tuple[int, HostPorts] | None:
    with api.db.read_session() as s:
        row = s.scalar(
            select(DeviceState).where(
                DeviceState.device_name == host, DeviceState.enforcement_point == "ports"
            )
        )
        return (row.desired_generation, HostPorts.from_json(row.rendered)) if row else None


def test_vm_create_and_delete_publish_the_host_port_map(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    acme = make_tenant("acme")
    api.client.post(
        "/api/v1/networks",
        headers=acme.headers,
        json={"name": "app", "cidr": "10.1.0.0/24", "site": "sz1"},
    )
    r = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "w", "flavor": "s1.small", "networks": ["app"], "count": 2},
    )
    assert r.status_code == 201, r.text
    vms = r.json()["items"]
    hosts = {}
    for vm in vms:
        host_id = api.client.get(f"/api/v1/vms/{vm['id']}", headers=api.op).json()["host_id"]
        hosts[vm["id"]] = api.client.get(f"/api/v1/hosts/{host_id}", headers=api.op).json()["name"]
    first = vms[0]
    found = _doc(api, hosts[first["id"]])
    assert found is not None
    generation, doc = found
    [binding] = [p for p in doc.ports if p.vm_id == first["id"]]
    assert binding.tenant == "acme" and binding.network == "app" and binding.vm == first["name"]
    assert binding.ips and binding.ips[0].startswith("10.1.0.") and binding.vlan >= 100
    assert api.client.delete(f"/api/v1/vms/{first['id']}", headers=acme.headers).status_code < 300
    after = _doc(api, hosts[first["id"]])
    assert after is not None and after[0] == generation + 1
    assert all(p.vm_id != first["id"] for p in after[1].ports)
