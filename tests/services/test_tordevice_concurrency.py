"""Two changes patching one ToR at once, on PostgreSQL: the second waits, then patches
the first one's document, so neither change is lost."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import enforcement
from fuyun.services.bootstrap import bootstrap
from fuyun.services.ports import bind_port_host
from fuyun.store.engine import Database
from fuyun.store.models import (
    DeviceState,
    Host,
    Module,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    Switch,
)
from tests.api.conftest import Api, TenantAccount, make_tenant
from tests.services.test_tordevice import _check_every_tor

__all__ = ["make_tenant"]  # the API's fixture, used here on PostgreSQL

Tenant = Callable[..., TenantAccount]


@pytest.fixture
def api(pg_db: Database) -> Iterator[Api]:
    settings = Settings(database_url=pg_db.url)
    driver = FakeComputeDriver()
    token = bootstrap(pg_db, settings, driver, fabric="small").token
    app = create_app(settings, db=pg_db, compute_driver=driver)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, db=pg_db, driver=driver, operator_token=token)


def _stage(api: Api, make_tenant: Tenant) -> list[uuid.UUID]:
    """Two tenants' VMs on two hosts of one ToR that enforces; answers their groups."""
    with api.db.write_session() as s:
        module = s.scalars(select(Module).order_by(Module.name)).first()
        assert module is not None
        module.enforcement_point = "tor-acl"
        module_name = module.name
    groups, ports = [], []
    for name in ("a", "b"):
        t = make_tenant(name)
        r = api.client.post(
            "/api/v1/networks",
            headers=api.op,
            json={"name": "n", "cidr": "10.0.0.0/24", "module": module_name, "tenant_id": t.id},
        )
        assert r.status_code == 201, r.text
        r = api.client.post(
            "/api/v1/vms",
            headers=t.headers,
            json={"name": "v", "flavor": "s1.small", "networks": ["n"]},
        )
        assert r.status_code == 201, r.text
        with api.db.read_session() as s:
            ports.append(s.scalars(select(Port.id).where(Port.tenant_id == uuid.UUID(t.id))).one())
            groups.append(
                s.scalars(
                    select(SecurityGroup.id).where(SecurityGroup.tenant_id == uuid.UUID(t.id))
                ).one()
            )
    with api.db.write_session() as s:
        tor = next(
            t
            for t in s.scalars(select(Switch).where(Switch.module_id == module.id))
            if len(list(s.scalars(select(Host.id).where(Host.tor_id == t.id)))) >= 2
        )
        hosts = list(s.scalars(select(Host).where(Host.tor_id == tor.id).order_by(Host.name)))
        touched = set()
        for port_id, host in zip(ports, hosts[:2], strict=True):
            port = s.get(Port, port_id)
            assert port is not None and port.host_id is not None
            touched |= {port.host_id, host.id}
            bind_port_host(s, port, host.id)
        enforcement.recompile(s, touched)
    return groups


def _add_rule(
    db: Database, group_id: uuid.UUID, port: int, locked: threading.Event, go: threading.Event
) -> None:
    with db.write_session() as s:
        tenant_id = s.get(SecurityGroup, group_id).tenant_id  # type: ignore[union-attr]
        s.add(
            SecurityGroupRule(
                group_id=group_id,
                tenant_id=tenant_id,
                direction="ingress",
                ethertype=4,
                protocol="tcp",
                port_min=port,
                port_max=port,
            )
        )
        s.flush()
        enforcement.recompile(s, enforcement.affected_hosts(s, groups=[group_id]))
        locked.set()
        go.wait(30)


def test_two_changes_patching_one_tor_take_turns(api: Api, make_tenant: Tenant) -> None:
    first_group, second_group = _stage(api, make_tenant)
    first_locked, second_locked, go, at_once = (threading.Event() for _ in range(4))
    at_once.set()
    first = threading.Thread(target=_add_rule, args=(api.db, first_group, 1001, first_locked, go))
    second = threading.Thread(
        target=_add_rule, args=(api.db, second_group, 1002, second_locked, at_once)
    )
    first.start()
    assert first_locked.wait(30)
    second.start()
    # The second change waits for the ToR's row while the first holds it uncommitted.
    waiting = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not waiting:
        with api.db.engine.connect() as conn:
            waiting = bool(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                    )
                ).scalar()
            )
        if not waiting:
            time.sleep(0.02)
    assert waiting and not second_locked.is_set()
    go.set()
    first.join(30)
    second.join(30)
    assert second_locked.is_set()
    with api.db.read_session() as s:
        assert _check_every_tor(s) >= 1
        docs = list(s.scalars(select(DeviceState.ir).where(DeviceState.device_type == "switch")))
    ports = {
        r["m"]["lo"] for doc in docs for rl in doc["rl"] for side in ("in", "out") for r in rl[side]
    }
    assert {1001, 1002} <= ports, "both changes are in the ToR's document"
