"""Moving a module's enforcement point (host vswitch <-> ToR) through the API: the new
point enforces every port at once, the old one is emptied so its agents withdraw."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select

from fuyun.policy.ir import from_json
from fuyun.store.models import DeviceState, Host, Module, Switch
from tests.api.conftest import Api, TenantAccount

Tenant = Callable[..., TenantAccount]


def _ports_by_device(api: Api, module_id: uuid.UUID) -> dict[tuple[str, str], tuple[set[str], int]]:
    """(type, device) of the module's hosts and ToRs -> (port ids enforced, generation)."""
    with api.db.read_session() as s:
        hosts = list(s.scalars(select(Host).where(Host.module_id == module_id)))
        names = {h.name for h in hosts} | set(
            s.scalars(select(Switch.name).where(Switch.id.in_({h.tor_id for h in hosts})))
        )
        out = {}
        for row in s.scalars(
            select(DeviceState).where(
                DeviceState.device_name.in_(names),
                DeviceState.enforcement_point.in_(("vswitch", "tor-acl")),
            )
        ):
            ports = {str(p.endpoint.port_id) for p in from_json(row.ir).ports}
            out[(row.device_type, row.device_name)] = (ports, row.desired_generation)
        return out


def test_moving_enforcement_to_the_tors_and_back_rehomes_every_port(
    api: Api, make_tenant: Tenant
) -> None:
    with api.db.write_session() as s:
        for switch in s.scalars(select(Switch)):
            switch.platform = "nxos"
        module = s.scalars(select(Module).where(Module.name == "sz1-m01")).one()
        assert module.enforcement_point == "vswitch"
        module_id = module.id
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": "web", "cidr": "10.71.0.0/24", "module": "sz1-m01", "tenant_id": acme.id},
    )
    assert r.status_code == 201, r.text
    r = api.client.post(
        "/api/v1/vms",
        headers=acme.headers,
        json={"name": "w", "flavor": "s1.small", "count": 3, "networks": ["web"]},
    )
    assert r.status_code == 201, r.text
    ports = {p["id"] for p in api.ports_of(r.json()["items"], acme.headers)}

    def enforced(kind: str) -> set[str]:
        return {
            p
            for (dtype, _), (found, _) in _ports_by_device(api, module_id).items()
            if dtype == kind
            for p in found
        }

    assert enforced("host") == ports and enforced("switch") == set()
    before = _ports_by_device(api, module_id)

    r = api.client.patch(
        f"/api/v1/modules/{module_id}", headers=api.op, json={"enforcement_point": "tor-acl"}
    )
    assert r.status_code == 200, r.text
    after = _ports_by_device(api, module_id)
    assert enforced("switch") == ports and enforced("host") == set()
    for key, (found, generation) in before.items():
        if found:  # the hosts that enforced a port must learn they no longer do
            assert after[key] == (set(), generation + 1), key
    assert api.client.get("/api/v1/verify", headers=api.op).json()["ok"] is True

    r = api.client.patch(
        f"/api/v1/modules/{module_id}", headers=api.op, json={"enforcement_point": "vswitch"}
    )
    assert r.status_code == 200, r.text
    assert enforced("host") == ports and enforced("switch") == set()
    assert api.client.get("/api/v1/verify", headers=api.op).json()["ok"] is True

    def guests() -> set[str]:
        with api.db.read_session() as s:
            return set(
                s.scalars(select(DeviceState.device_name).where(DeviceState.device_type == "guest"))
            )

    r = api.client.patch(
        f"/api/v1/modules/{module_id}", headers=api.op, json={"enforcement_point": "vm-iptables"}
    )
    assert r.status_code == 200, r.text
    assert guests() == ports and enforced("host") == set()
    r = api.client.patch(
        f"/api/v1/modules/{module_id}", headers=api.op, json={"enforcement_point": "vswitch"}
    )
    assert r.status_code == 200, r.text
    assert guests() == set() and enforced("host") == ports
