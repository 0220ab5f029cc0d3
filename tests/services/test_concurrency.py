"""Allocation under real concurrency: many clients, several processes, one store.

On PostgreSQL: two API processes, and 32 clients spread over 4 client processes
(8 threads each). On SQLite: one API process and 32 client threads. Whatever the
interleaving: no address, VLAN or MAC is handed out twice, a full subnet grows or
refuses as configured, and nothing answers 5xx.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.domain.enums import Role
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import identity, networks, tenants
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from fuyun.store.models import IpAllocation, Port, VlanAllocation, VlanPool
from tests.support.live import api_servers
from tests.support.load import hammer

PROCESSES, THREADS = 4, 8


@dataclass
class Stage:
    db: Database
    urls: list[str]
    operator: str
    tenant_id: str
    tenant_token: str
    processes: int


@pytest.fixture(params=["sqlite", "postgresql"])
def stage(request: pytest.FixtureRequest) -> Iterator[Stage]:
    db: Database = request.getfixturevalue("db" if request.param == "sqlite" else "pg_db")
    result = bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small")
    tenant = tenants.create_tenant(db, SYSTEM, name="viral", limits={"ips": 100_000})
    user = identity.create_user(
        db,
        SYSTEM,
        username="viral-admin",
        role=Role.TENANT_ADMIN,
        tenant_id=tenant.id,
        password=None,
    )
    token = identity.create_token(db, identity.principal_of(user)).secret
    servers = 2 if request.param == "postgresql" else 1
    with api_servers(db.url, servers, env={"FUYUN_ARGON2_PROFILE": "fast"}) as urls:
        yield Stage(
            db,
            urls,
            result.token,
            str(tenant.id),
            token,
            PROCESSES if request.param == "postgresql" else 1,
        )


def _run(
    stage: Stage, token: str, path: str, per_client: list[dict[str, Any]]
) -> list[tuple[int, dict[str, Any]]]:
    clients = PROCESSES * THREADS
    bodies = [list(per_client) for _ in range(clients)]
    if stage.processes == 1:
        return hammer(stage.urls, token, path, bodies)
    chunks = [bodies[i :: stage.processes] for i in range(stage.processes)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(stage.processes) as pool:
        parts = pool.starmap(hammer, [(stage.urls, token, path, c) for c in chunks])
    return [item for part in parts for item in part]


def _network(stage: Stage, **kw: Any) -> str:
    ctx = networks.Networking(db=stage.db, settings=Settings(database_url=stage.db.url))
    net = networks.create_network(
        ctx,
        SYSTEM,
        networks.NetworkRequest(tenant_id=__import__("uuid").UUID(stage.tenant_id), **kw),
    )
    return str(net.id)


def test_ports_race_for_a_small_subnet_that_grows(stage: Stage) -> None:
    net = _network(
        stage,
        name="burst",
        cidr="10.50.0.0/27",
        growth=networks.Growth.SECONDARY,
        growth_prefix_len=28,
    )
    results = _run(stage, stage.tenant_token, "/api/v1/ports", [{"network_id": net}] * 4)
    statuses = Counter(code for code, _ in results)
    assert statuses == {201: PROCESSES * THREADS * 4}, statuses
    ips = [ip for _, body in results for ip in body["ips"]]
    macs = [body["mac"] for _, body in results]
    assert len(set(ips)) == len(ips) == 128
    assert len(set(macs)) == len(macs)
    with stage.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(IpAllocation)) == 128
        assert s.scalar(select(func.count(func.distinct(IpAllocation.address)))) == 128
        assert s.scalar(select(func.count()).select_from(Port)) == 128
    detail = _get(stage, f"/api/v1/networks/{net}")
    # 29 in the /27, then 13 per /28 secondary: exactly as many ranges as needed.
    assert len(detail["subnets"]) == 1 + -(-(128 - 29) // 13)


def test_ports_race_for_a_subnet_that_refuses(stage: Stage) -> None:
    net = _network(stage, name="capped", cidr="10.60.0.0/28", growth=networks.Growth.REFUSE)
    results = _run(stage, stage.tenant_token, "/api/v1/ports", [{"network_id": net}])
    statuses = Counter(code for code, _ in results)
    assert statuses == {201: 13, 409: PROCESSES * THREADS - 13}, statuses
    assert {b["error"]["code"] for c, b in results if c == 409} == {"subnet_exhausted"}
    ips = [b["ips"][0] for c, b in results if c == 201]
    assert len(set(ips)) == 13


def test_networks_race_for_vlans(stage: Stage) -> None:
    with stage.db.write_session() as s:
        # Make the module's pool exist, then shrink it to 20 VLANs.
        pass
    _network(stage, name="seed", cidr="10.70.0.0/24", module="sz1-m01")
    with stage.db.write_session() as s:
        pool = s.scalar(select(VlanPool).where(VlanPool.name == "sz1-m01-vlans"))
        assert pool is not None
        pool.vlan_min, pool.vlan_max = 100, 119
    bodies = [
        {"name": f"n{i}", "prefix_len": 28, "module": "sz1-m01", "tenant_id": stage.tenant_id}
        for i in range(1)
    ]
    clients = PROCESSES * THREADS
    per = [[{**bodies[0], "name": f"n{c}"}] for c in range(clients)]
    if stage.processes == 1:
        results = hammer(stage.urls, stage.operator, "/api/v1/networks", per)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(stage.processes) as p:
            parts = p.starmap(
                hammer,
                [
                    (stage.urls, stage.operator, "/api/v1/networks", per[i :: stage.processes])
                    for i in range(stage.processes)
                ],
            )
        results = [x for part in parts for x in part]
    statuses = Counter(code for code, _ in results)
    assert statuses == {201: 19, 409: clients - 19}, statuses  # 20 in the pool, 1 taken
    vlans = [b["vlans"][0] for c, b in results if c == 201]
    assert len(set(vlans)) == 19
    with stage.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(VlanAllocation)) == 20


def _get(stage: Stage, path: str) -> Any:
    import httpx

    return httpx.get(
        stage.urls[0] + path, headers={"Authorization": f"Bearer {stage.tenant_token}"}
    ).json()
