"""Workers on PostgreSQL: queued workflows, lease takeover from a frozen worker, fencing.

Engines here run in threads of the test process against one PostgreSQL database, as
separate worker processes would (each engine has its own lease owner); the chaos test
does the same with real processes and SIGKILL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Workflow, WorkflowStep
from fuyun.workflows.engine import WorkflowTimeout
from fuyun.workflows.worker import Worker
from tests.support.scaleout import check_books, wait_for


@pytest.fixture
def world(pg_db: Database) -> dict[str, str]:
    settings = Settings(database_url=pg_db.url)
    bootstrap(pg_db, settings, FakeComputeDriver(), fabric="small")
    tenant = tenants.create_tenant(pg_db, SYSTEM, name="studio")
    net = networks.create_network(
        networks.Networking(db=pg_db, settings=settings),
        SYSTEM,
        networks.NetworkRequest(name="web", cidr="10.1.0.0/24", tenant_id=tenant.id),
    )
    return {"tenant_id": str(tenant.id), "network_id": str(net.id)}


def _runtime(db: Database, **settings: object) -> Runtime:
    return Runtime(db, Settings(database_url=db.url, **settings), FakeComputeDriver())  # type: ignore[arg-type]


def _request(world: dict[str, str], name: str = "web", count: int = 2) -> vms.VmRequest:
    return vms.VmRequest(
        name=name,
        flavor="s1.small",
        count=count,
        tenant_id=uuid.UUID(world["tenant_id"]),
        networks=(world["network_id"],),
    )


@pytest.fixture
def workers(pg_db: Database) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        w.stop()


def test_queued_workflows_are_run_by_workers(
    pg_db: Database, world: dict[str, str], workers: list[Worker]
) -> None:
    api = _runtime(pg_db, workflow_runner="queue")
    for _ in range(2):
        w = Worker(_runtime(pg_db).engine, concurrency=2, poll_s=0.05)
        w.start()
        workers.append(w)
    created = vms.create_vms(api, SYSTEM, _request(world, count=3))
    assert [v.state for v in created.vms] == ["active"] * 3
    with pg_db.read_session() as s:
        wf = s.get(Workflow, created.workflow_id)
        assert wf is not None and wf.state == "succeeded" and wf.attempts == 1
    # A refusal comes back to the waiting caller with its own code and status.
    with pytest.raises(Exception) as refused:
        vms.create_vms(api, SYSTEM, _request(world, name="huge", count=400))
    assert getattr(refused.value, "status", None) == 409
    deleted = vms.delete_vm(api, SYSTEM, created.vms[0].id)
    assert deleted.state == "deleted"
    assert sum(w.stats.finished for w in workers) == 3
    check_books(pg_db)


def test_the_caller_stops_waiting_but_the_workflow_is_not_lost(
    pg_db: Database, world: dict[str, str], workers: list[Worker]
) -> None:
    api = _runtime(pg_db, workflow_runner="queue", workflow_wait_s=0.3)
    with pytest.raises(WorkflowTimeout) as timeout:
        vms.create_vms(api, SYSTEM, _request(world))
    assert timeout.value.status == 504
    with pg_db.read_session() as s:
        [wf] = s.scalars(select(Workflow))
        assert wf.state == "pending"
    w = Worker(_runtime(pg_db).engine, concurrency=1, poll_s=0.05)
    w.start()
    workers.append(w)
    outcome = api.engine.wait(wf.id, timeout_s=60)
    assert outcome.state == "succeeded" and len(outcome.data["vms"]) == 2
    check_books(pg_db)


def test_a_frozen_workers_workflow_is_taken_over_and_resumed_from_its_last_step(
    pg_db: Database, world: dict[str, str]
) -> None:
    frozen, rescuer = _runtime(pg_db, workflow_lease_s=1), _runtime(pg_db, workflow_lease_s=1)
    at_boot, thaw = threading.Event(), threading.Event()

    def freeze(_wf: uuid.UUID, step: str) -> None:
        if step == "boot":
            frozen.engine._held.clear()  # the heartbeat stops, as in a stalled process
            at_boot.set()
            thaw.wait(60)

    frozen.engine.before_step = freeze
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.update(
            outcome=frozen.engine.execute(
                "vm.create",
                {
                    **vms._validate_create(
                        pg_db, SYSTEM, uuid.UUID(world["tenant_id"]), _request(world)
                    )
                },
                tenant_id=uuid.UUID(world["tenant_id"]),
                actor="test",
            )
        )
    )
    thread.start()
    assert at_boot.wait(30)
    with pg_db.read_session() as s:
        [wf] = s.scalars(select(Workflow))
        place = s.scalar(select(WorkflowStep).where(WorkflowStep.name == "place"))
        assert place is not None and place.state == "done"
        placed_at = place.finished_at
    # The lease runs out; another worker claims it and resumes at "boot", not "place".
    takeovers = REGISTRY.get_sample_value("fuyun_workflow_takeovers_total") or 0.0
    wait_for(lambda: rescuer.engine.claim_orphans() == [wf.id], 30, "the lease to expire")
    outcome = rescuer.engine.drive(wf.id)
    assert outcome is not None and outcome.state == "succeeded"
    assert REGISTRY.get_sample_value("fuyun_workflow_takeovers_total") == takeovers + 1
    with pg_db.read_session() as s:
        place = s.scalar(select(WorkflowStep).where(WorkflowStep.name == "place"))
        assert place is not None and place.finished_at == placed_at  # not run again
        assert s.get(Workflow, wf.id).attempts == 1  # type: ignore[union-attr]
    # The frozen worker wakes up: its next write is fenced off, it does nothing more.
    thaw.set()
    thread.join(30)
    assert result["outcome"].state == "abandoned"  # type: ignore[attr-defined]
    books = check_books(pg_db)
    assert books["live_vms"] == 2
