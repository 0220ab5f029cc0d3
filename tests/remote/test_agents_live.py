"""50 host agents against one real API process on PostgreSQL.

Each agent is the real HTTP desired-state source feeding a ``sim`` network driver
(see :class:`tests.support.scaleout.SimAgent`). Shown: a security group change reaches
every affected agent and no other; an agent killed between applying and reporting
converges when it starts again; a controller SIGKILLed while agents watch, with a
change made meanwhile through another controller, loses nothing once it is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Host, Vm
from tests.support.postgres import PgCluster
from tests.support.scaleout import (
    Proc,
    SimAgent,
    agent_fabric,
    api_proc,
    stop_agents,
    wait_for,
)

AGENTS = 50
INLINE = {"FUYUN_WORKFLOW_RUNNER": "inline"}


@dataclass
class Stage:
    db: Database
    api: Proc
    client: httpx.Client
    tenant: dict[str, str]
    group_id: str
    busy_hosts: set[str]
    agents: dict[str, SimAgent]
    tokens: dict[str, str]


def _desired(db: Database) -> dict[str, tuple[int, str, int]]:
    """Each host's policy document. A host has others too (ports, qos): without the
    enforcement point the row that came last, in no defined order, would win."""
    with db.read_session() as s:
        return {
            r.device_name: (r.desired_generation, r.digest, r.applied_generation)
            for r in s.scalars(
                select(DeviceState).where(
                    DeviceState.device_type == "host", DeviceState.enforcement_point == "vswitch"
                )
            )
        }


def _converged(stage: Stage, hosts: set[str] | None = None) -> bool:
    desired = _desired(stage.db)
    for host in hosts or set(stage.agents):
        agent = stage.agents[host]
        want = desired.get(host)
        if want is None:
            continue
        seen = agent.driver.observe("host", host, "vswitch")
        if seen is None or seen.digest != want[1] or want[2] != want[0]:
            return False
    return True


@pytest.fixture(scope="module")
def stage(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """One staged world for the module (it takes half a minute): the tests run in order."""
    tmp_path = tmp_path_factory.mktemp("agents")
    url = pg_cluster.create_database()
    pg_db = Database(url)
    fabric = agent_fabric(tmp_path)
    token = bootstrap(
        pg_db, Settings(database_url=pg_db.url), FakeComputeDriver(), fabric=str(fabric)
    ).token
    api = api_proc(pg_db.url, tmp_path, INLINE)
    api.start()
    client = httpx.Client(
        base_url=f"{api.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120
    )
    agents: dict[str, SimAgent] = {}
    try:
        tenant = client.post(
            "/tenants",
            json={
                "name": "studio",
                "quotas": {
                    "vms": 500,
                    "vcpus": 2000,
                    "ram_mb": 2000000,
                    "ips": 1000,
                    "bandwidth_mbps": 100000,
                },
            },
        ).json()
        assert (
            client.post(
                "/networks",
                json={
                    "name": "app",
                    "cidr": "10.7.0.0/22",
                    "site": "sz1",
                    "tenant_id": tenant["id"],
                },
            ).status_code
            == 201
        )
        sg = client.post("/security-groups", json={"name": "web", "tenant_id": tenant["id"]})
        assert sg.status_code == 201, sg.text
        r = client.post(
            "/vms",
            json={
                "name": "web",
                "flavor": "s1.small",
                "count": 40,
                "strategy": "spread",
                "tenant_id": tenant["id"],
                "networks": ["app"],
                "security_groups": ["web"],
            },
        )
        assert r.status_code == 201, r.text
        with pg_db.read_session() as s:
            busy = set(
                s.scalars(
                    select(Host.name).join(Vm, Vm.host_id == Host.id).where(Vm.state == "active")
                )
            )
            names = list(s.scalars(select(Host.name).order_by(Host.name)))
        hosts = sorted(busy) + [h for h in names if h not in busy][: AGENTS - len(busy)]
        assert len(hosts) == AGENTS
        tokens = {}
        for host in hosts:
            cred = client.post(f"/hosts/{host}/agent-credentials")
            assert cred.status_code == 201, cred.text
            tokens[host] = cred.json()["token"]
        for host in hosts:
            agents[host] = SimAgent([api.url], host, tokens[host]).start()  # type: ignore[list-item]
        st = Stage(pg_db, api, client, tenant, sg.json()["id"], busy, agents, tokens)
        wait_for(lambda: _converged(st), 120, "every agent to converge after start")
        yield st
    finally:
        stop_agents(list(agents.values()))
        client.close()
        api.stop()
        pg_db.dispose()
        pg_cluster.drop_database(url)
    assert all(not a.errors for a in agents.values()), {
        h: a.errors for h, a in agents.items() if a.errors
    }


def _add_rule(client: httpx.Client, group_id: str, port: int) -> None:
    r = client.post(
        f"/security-groups/{group_id}/rules",
        json={"direction": "ingress", "protocol": "tcp", "port_min": port, "port_max": port},
    )
    assert r.status_code == 201, r.text


@pytest.mark.slow
def test_a_group_change_reaches_every_affected_agent_and_no_other(stage: Stage) -> None:
    before = _desired(stage.db)
    applies = {h: a.driver.applies for h, a in stage.agents.items()}
    _add_rule(stage.client, stage.group_id, 8443)
    after = _desired(stage.db)
    changed = {h for h in stage.agents if after.get(h, (0,))[0] != before.get(h, (0,))[0]}
    assert changed == stage.busy_hosts  # exactly the hosts with members of the group
    wait_for(lambda: _converged(stage), 60, "the rule to reach every agent")
    for host, agent in stage.agents.items():
        grew = agent.driver.applies - applies[host]
        assert grew == (1 if host in changed else 0), host
        if host in changed:
            assert "8443" in (agent.driver.config("host", host, "vswitch") or "")


@pytest.mark.slow
def test_an_agent_killed_mid_apply_converges_when_it_starts_again(stage: Stage) -> None:
    host = sorted(stage.busy_hosts)[0]
    victim = stage.agents[host]
    victim.crash_after_apply = True
    _add_rule(stage.client, stage.group_id, 9000)
    wait_for(lambda: not victim.alive, 30, "the agent to apply and die before reporting")
    gen, digest, applied = _desired(stage.db)[host]
    assert victim.driver.observe("host", host, "vswitch").digest == digest  # type: ignore[union-attr]
    assert applied < gen  # the store never heard of it
    others = set(stage.agents) - {host}
    wait_for(lambda: _converged(stage, others), 60, "the other agents")
    # A new process: empty driver, full resync, apply, report.
    reborn = SimAgent([stage.api.url], host, stage.tokens[host]).start()  # type: ignore[list-item]
    stage.agents[host] = reborn
    victim.stop()
    wait_for(lambda: _converged(stage), 60, "the restarted agent to converge")


@pytest.mark.slow
def test_a_controller_restarted_mid_watch_loses_nothing(stage: Stage, tmp_path: Path) -> None:
    other = api_proc(stage.db.url, tmp_path, INLINE)
    other.start()
    try:
        stage.api.kill()  # every agent's watch breaks
        with httpx.Client(
            base_url=f"{other.url}/api/v1", headers=stage.client.headers, timeout=120
        ) as second:
            _add_rule(second, stage.group_id, 7000)
            _add_rule(second, stage.group_id, 7001)
        want = _desired(stage.db)
        assert not _converged(stage)
        stage.api.start()  # same port: the agents' only controller is back
        wait_for(lambda: _converged(stage), 240, "every agent to catch up after the restart")
        for host in stage.busy_hosts:
            config = stage.agents[host].driver.config("host", host, "vswitch") or ""
            assert "7000" in config and "7001" in config
            assert (
                stage.agents[host].driver.observe("host", host, "vswitch").generation
                == want[host][0]
            )  # type: ignore[union-attr]
    finally:
        other.stop()
