"""A patched ToR equals a ToR compiled from scratch, byte for byte, after any changes.

A change recompiles only the changed hosts' ports of a ToR that enforces and keeps
every other host's entries from the stored IR. Through a random sequence of the
changes users make — rules added and deleted, group memberships, VMs created and
deleted, a network's DHCP turned off or on, ports moved between hosts of one ToR and
to other ToRs (with the half-way state of a move, bound to both hosts) — every ToR's
stored IR must keep the digest of a full compile of that ToR.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.policy.ir import to_json
from fuyun.services import enforcement, policy
from fuyun.services.bootstrap import bootstrap
from fuyun.services.ports import bind_port_host
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Host, Module, Port, Switch
from tests.api.conftest import Api, TenantAccount, make_tenant

__all__ = ["make_tenant"]  # the API's fixture, used here on either database


@pytest.fixture
def api(any_db: Database) -> Iterator[Api]:
    """The API on a store with the ``small`` fabric, on SQLite and on PostgreSQL (where
    two changes patching one ToR lock its row)."""
    settings = Settings(database_url=any_db.url)
    driver = FakeComputeDriver()
    token = bootstrap(any_db, settings, driver, fabric="small").token
    app = create_app(settings, db=any_db, compute_driver=driver)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, db=any_db, driver=driver, operator_token=token)


Tenant = Callable[..., TenantAccount]


def _digest(ir: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(ir, separators=(",", ":")).encode()).hexdigest()


def _check_every_tor(s: Session) -> int:
    """Assert each stored ToR document is what a full compile of its ToR writes."""
    checked = 0
    for row in s.scalars(select(DeviceState).where(DeviceState.device_type == "switch")):
        tor = s.scalars(select(Switch).where(Switch.name == row.device_name)).one()
        hosts = set(s.scalars(select(Host.id).where(Host.tor_id == tor.id)))
        full = [
            p
            for dtype, _, p in enforcement.device_policies(s, hosts)
            if dtype == "switch" and p.device == row.device_name
        ]
        assert len(full) == 1
        want = to_json(full[0])
        assert row.ir == want, f"{row.device_name} differs from a full compile"
        assert row.digest == _digest(want)
        checked += 1
    return checked


def _world(api: Api, make_tenant: Tenant) -> tuple[list[TenantAccount], dict[str, list[str]]]:
    """One module enforcing at its ToRs, the other in the vswitch; tenants with VMs in both."""
    with api.db.write_session() as s:
        modules = list(s.scalars(select(Module).order_by(Module.name)))
        modules[0].enforcement_point = "tor-acl"
        for switch in s.scalars(select(Switch).where(Switch.module_id == modules[0].id)):
            switch.platform = "nxos"
        names = [m.name for m in modules]
    tenants = [make_tenant(f"t{i}") for i in range(3)]
    groups: dict[str, list[str]] = {}
    for i, t in enumerate(tenants):
        for module in names:
            r = api.client.post(
                "/api/v1/networks",
                headers=api.op,
                json={
                    "name": f"n-{module}",
                    "cidr": f"10.{i}.{names.index(module)}.0/24",
                    "module": module,
                    "tenant_id": t.id,
                },
            )
            assert r.status_code == 201, r.text
        for g in ("web", "db"):
            r = api.client.post("/api/v1/security-groups", headers=t.headers, json={"name": g})
            assert r.status_code == 201, r.text
        groups[t.id] = ["default", "web", "db"]
    return tenants, groups


def _vm(api: Api, t: TenantAccount, rng: random.Random) -> None:
    network = rng.choice(["n-" + m for m in _module_names(api)])
    r = api.client.post(
        "/api/v1/vms",
        headers=t.headers,
        json={"name": f"v{rng.randrange(10**6)}", "flavor": "s1.small", "networks": [network]},
    )
    assert r.status_code == 201, r.text


def _module_names(api: Api) -> list[str]:
    with api.db.read_session() as s:
        return sorted(s.scalars(select(Module.name)))


def _move(api: Api, rng: random.Random, *, same_tor: bool) -> None:
    """A port moves as the migration workflow moves it: bound to both hosts, then on."""
    with api.db.write_session() as s:
        ports = list(s.scalars(select(Port).where(Port.host_id.is_not(None)).order_by(Port.id)))
        port = rng.choice(ports)
        source = s.get(Host, port.host_id)
        assert source is not None
        others = list(s.scalars(select(Host).where(Host.id != source.id).order_by(Host.name)))
        near = [h for h in others if (h.tor_id == source.tor_id) == same_tor]
        target = rng.choice(near or others)
        bind_port_host(s, port, source.id, target.id)
        enforcement.recompile(s, {source.id, target.id})
        _check_every_tor(s)
        bind_port_host(s, port, target.id, None)
        enforcement.recompile(s, {source.id, target.id})


def test_a_patched_tor_equals_a_full_compile_after_random_changes(
    api: Api, make_tenant: Tenant
) -> None:
    rng = random.Random(7)
    tenants, groups = _world(api, make_tenant)
    for t in tenants:
        for _ in range(4):
            _vm(api, t, rng)
    spliced = []
    inner = enforcement.splice

    def counting(*args: object) -> object:
        spliced.append(1)
        return inner(*args)  # type: ignore[arg-type]

    enforcement.splice = counting  # type: ignore[assignment]
    rules: list[uuid.UUID] = []
    try:
        for step in range(60):
            t = rng.choice(tenants)
            kind = rng.choice(
                ["rule", "rule", "unrule", "groups", "vm", "unvm", "move-near", "move-far", "dhcp"]
            )
            if kind == "rule":
                gid = _group_id(api, t, rng.choice(groups[t.id]))
                remote = rng.choice([None, rng.choice(groups[t.id])])
                spec = policy.RuleSpec(
                    rng.choice(["ingress", "egress"]),
                    4,
                    "tcp",
                    rng.randrange(1, 60000),
                    None,
                    None if remote else f"10.9.{step}.0/24",
                    remote,
                )
                rules.append(policy.add_rule(api.db, SYSTEM, gid, spec).id)
            elif kind == "unrule" and rules:
                policy.delete_rule(api.db, SYSTEM, rules.pop(rng.randrange(len(rules))))
            elif kind == "groups":
                port_id = _some_port(api, t, rng)
                if port_id is not None:
                    chosen = rng.sample(groups[t.id], rng.randint(0, 3))
                    policy.update_port_groups(
                        api.db, Settings(database_url=api.db.url), SYSTEM, port_id, chosen
                    )
            elif kind == "vm":
                _vm(api, t, rng)
            elif kind == "unvm":
                vms = api.client.get("/api/v1/vms", headers=t.headers).json()["items"]
                live = [v for v in vms if v["state"] != "deleted"]
                if live:
                    vm = rng.choice(live)
                    r = api.client.delete(f"/api/v1/vms/{vm['id']}", headers=t.headers)
                    assert r.status_code in (200, 202), r.text
            elif kind == "dhcp":  # every port's binding on the network changes
                nets = api.client.get("/api/v1/networks", headers=t.headers).json()["items"]
                net = rng.choice(nets)
                r = api.client.patch(
                    f"/api/v1/networks/{net['id']}",
                    headers=t.headers,
                    json={"dhcp": not net["dhcp"]},
                )
                assert r.status_code == 200, r.text
            elif kind.startswith("move"):
                _move(api, rng, same_tor=kind == "move-near")
            with api.db.read_session() as s:
                assert _check_every_tor(s) >= 1, f"step {step} ({kind})"
    finally:
        enforcement.splice = inner  # type: ignore[assignment]
    assert len(spliced) > 20, "the changes patched ToRs rather than compiling them in full"


def _group_id(api: Api, t: TenantAccount, name: str) -> uuid.UUID:
    groups = api.client.get("/api/v1/security-groups", headers=t.headers).json()
    return uuid.UUID(next(g["id"] for g in groups if g["name"] == name))


def _some_port(api: Api, t: TenantAccount, rng: random.Random) -> uuid.UUID | None:
    with api.db.read_session() as s:
        ports = list(
            s.scalars(
                select(Port.id)
                .where(Port.tenant_id == uuid.UUID(t.id), Port.host_id.is_not(None))
                .order_by(Port.id)
            )
        )
    return rng.choice(ports) if ports else None
