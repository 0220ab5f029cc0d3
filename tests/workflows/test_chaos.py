"""Chaos: 3 API processes and 3 workers on PostgreSQL, 16 clients, a worker SIGKILLed
every few seconds — and afterwards nothing is lost, doubled or left half-done.

Clients create and delete VMs for ``FUYUN_CHAOS_S`` seconds (60 by default), each
request with an ``Idempotency-Key`` and retried with the same key after a network
error or a 5xx, as a careful client does. Workers run with a 3 s lease, so a killed
worker's workflows are taken over by the others within seconds. Host agents (the
real HTTP source on a ``sim`` driver) watch every host throughout.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Host, Vm
from tests.support.scaleout import (
    SimAgent,
    agent_fabric,
    check_books,
    cluster,
    stop_agents,
    wait_for,
)

CLIENTS = 16
CHAOS_ENV = {
    "FUYUN_WORKFLOW_LEASE_S": "3",
    "FUYUN_WORKER_CONCURRENCY": "4",
    # A hypervisor that takes a moment, so that kills land inside steps.
    "FUYUN_FAKE_DELAY_S": "0.05",
}
QUOTAS = {"vms": 1000, "vcpus": 8000, "ram_mb": 8_000_000, "ips": 2000, "bandwidth_mbps": 10**6}


class Client(threading.Thread):
    """Create VMs, delete some of its own, retrying each request under one key."""

    def __init__(self, n: int, urls: list[str], token: str, stop: threading.Event):
        super().__init__(name=f"client-{n}", daemon=True)
        self.n, self.urls, self.stop_event = n, urls, stop
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120)
        self.rng = random.Random(n)
        self.alive: set[str] = set()
        self.deleted: set[str] = set()
        self.refused = 0
        self.errors: list[str] = []

    def _call(self, method: str, path: str, body: object = None) -> httpx.Response | None:
        key = uuid.uuid4().hex
        for attempt in range(30):
            url = self.urls[(self.n + attempt) % len(self.urls)]
            try:
                r = self.http.request(
                    method, f"{url}/api/v1{path}", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError:
                continue
            if r.status_code < 500:
                return r
            time.sleep(0.2)
        self.errors.append(f"{method} {path}: no answer after 30 attempts")
        return None

    def run(self) -> None:
        while not self.stop_event.is_set():
            if self.alive and self.rng.random() < 0.4:
                vm = self.rng.choice(sorted(self.alive))
                r = self._call("DELETE", f"/vms/{vm}")
                if r is not None and r.status_code == 200:
                    self.alive.discard(vm)
                    self.deleted.add(vm)
                elif r is not None:
                    self.errors.append(f"delete {vm}: {r.status_code} {r.text[:200]}")
                continue
            body = {
                "name": f"c{self.n}",
                "flavor": "s1.small",
                "count": self.rng.choice((1, 1, 2)),
                "networks": ["app"],
                "security_groups": ["web"],
            }
            r = self._call("POST", "/vms", body)
            if r is None:
                continue
            if r.status_code == 201:
                self.alive |= {v["id"] for v in r.json()["items"]}
            elif r.status_code == 409:
                self.refused += 1  # a lost placement race or a full host: nothing created
            else:
                self.errors.append(f"create: {r.status_code} {r.text[:200]}")


@pytest.mark.slow
def test_chaos_nothing_lost_or_doubled(pg_db: Database, tmp_path: Path) -> None:
    seconds = float(os.environ.get("FUYUN_CHAOS_S", "60"))
    fabric = agent_fabric(tmp_path)
    op_token = bootstrap(
        pg_db, Settings(database_url=pg_db.url), FakeComputeDriver(), fabric=str(fabric)
    ).token
    with cluster(pg_db.url, tmp_path, apis=3, workers=3, env=CHAOS_ENV) as (apis, workers):
        urls = [a.url for a in apis if a.url]
        op = httpx.Client(
            base_url=f"{urls[0]}/api/v1",
            headers={"Authorization": f"Bearer {op_token}"},
            timeout=120,
        )
        tenant = op.post("/tenants", json={"name": "studio", "quotas": QUOTAS})
        assert tenant.status_code == 201, tenant.text
        tid = tenant.json()["id"]
        admin = op.post(
            "/users",
            json={
                "username": "studio-admin",
                "role": "tenant-admin",
                "tenant_id": tid,
                "password": "correct-horse",
            },
        )
        assert admin.status_code == 201, admin.text
        token = op.post("/tokens", json={"user_id": admin.json()["id"], "name": "chaos"}).json()[
            "token"
        ]
        tenant_api = {"Authorization": f"Bearer {token}"}
        assert (
            op.post(
                "/networks",
                headers=tenant_api,
                json={"name": "app", "cidr": "10.8.0.0/20", "site": "sz1"},
            ).status_code
            == 201
        )
        sg = op.post("/security-groups", headers=tenant_api, json={"name": "web"})
        assert sg.status_code == 201
        assert (
            op.post(
                f"/security-groups/{sg.json()['id']}/rules",
                headers=tenant_api,
                json={"direction": "ingress", "protocol": "tcp", "port_min": 80, "port_max": 80},
            ).status_code
            == 201
        )
        with pg_db.read_session() as s:
            hosts = list(s.scalars(select(Host.name).order_by(Host.name)))
        agents = []
        for host in hosts:
            cred = op.post(f"/hosts/{host}/agent-credentials")
            assert cred.status_code == 201
            agents.append(SimAgent(urls, host, cred.json()["token"], watch_timeout_s=5).start())

        stop = threading.Event()
        clients = [Client(i, urls, token, stop) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        kills, rng, deadline = 0, random.Random(7), time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(2.0, 5.0))
            victim = rng.choice(workers)
            victim.kill()
            kills += 1
            victim.start()
        stop.set()
        for c in clients:
            c.join(timeout=300)
        assert not any(c.is_alive() for c in clients), "a client hung"
        errors = [e for c in clients for e in c.errors]
        assert errors == [], errors[:5]

        # Every workflow finishes (the survivors take over what the killed ones held).
        wait_for(lambda: _unfinished(pg_db) == 0, 120, "every workflow to finish")
        books = check_books(pg_db)
        alive = set().union(*(c.alive for c in clients))
        deleted = set().union(*(c.deleted for c in clients))
        with pg_db.read_session() as s:
            live = {str(v) for v in s.scalars(select(Vm.id).where(Vm.state != "deleted"))}
            gone = {str(v) for v in s.scalars(select(Vm.id).where(Vm.state == "deleted"))}
        assert live == alive, "the store's live VMs are exactly those the clients hold"
        assert deleted <= gone
        # Agents catch up with every host's desired state.
        wait_for(lambda: _lagging(pg_db) == 0, 120, "every agent to converge")
        desired = _desired(pg_db)
        for agent in agents:
            want = desired.get(agent.host)
            if want is not None:
                seen = agent.driver.observe("host", agent.host, "vswitch")
                assert seen is not None and seen.digest == want, agent.host
        stop_agents(agents)
        assert all(not a.errors for a in agents)
        print(
            f"chaos: {seconds:.0f} s, {kills} workers killed, {books['workflows']} workflows, "
            f"{books['live_vms']} VMs live, {len(deleted)} deleted, "
            f"{sum(c.refused for c in clients)} creates refused (409)"
        )
        assert kills >= seconds / 5 - 1 and books["workflows"] > CLIENTS


def _unfinished(db: Database) -> int:
    from sqlalchemy import func

    from fuyun.store.models import Workflow

    with db.read_session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Workflow)
                .where(Workflow.state.not_in(("succeeded", "rolled_back")))
            )
            or 0
        )


def _lagging(db: Database) -> int:
    with db.read_session() as s:
        return len(
            list(
                s.scalars(
                    select(DeviceState.id).where(
                        DeviceState.applied_generation < DeviceState.desired_generation
                    )
                )
            )
        )


def _desired(db: Database) -> dict[str, str]:
    with db.read_session() as s:
        return {
            r.device_name: r.digest
            for r in s.scalars(
                select(DeviceState).where(
                    DeviceState.device_type == "host", DeviceState.enforcement_point == "vswitch"
                )
            )
        }
