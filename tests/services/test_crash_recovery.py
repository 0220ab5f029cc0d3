"""A controller killed (SIGKILL) at any step boundary leaves nothing half-done.

A worker process runs a VM workflow and kills itself just before a given step.
Then a fresh controller recovers: the VM ends ``active`` (create resumes) or
gone (delete resumes), and the books balance: quota use equals live VMs, host
use equals the VMs on each host, every port belongs to a live VM, every address
to a port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap, resync_driver
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Host, IpAllocation, Port, Quota, Vm, Workflow, WorkflowStep

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(db: Database) -> dict[str, str]:
    bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small")
    tenant = tenants.create_tenant(db, SYSTEM, name="studio")
    net = networks.create_network(
        networks.Networking(db=db, settings=Settings(database_url=db.url)),
        SYSTEM,
        networks.NetworkRequest(name="web", cidr="10.1.0.0/24", tenant_id=tenant.id),
    )
    return {"tenant_id": str(tenant.id), "network_id": str(net.id)}


def _crash(db: Database, op: str, step: str, args: dict[str, object]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.crash_worker", db.url, op, step, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr[-2000:])


def _recover(db: Database) -> Runtime:
    rt = Runtime(db, Settings(database_url=db.url), FakeComputeDriver())
    resync_driver(db, rt.driver)
    rt.engine.recover(force=True)
    return rt


def _books_balance(db: Database, tenant_id: str) -> None:
    with db.read_session() as s:
        live = list(s.scalars(select(Vm).where(Vm.state != "deleted")))
        quota = s.get(Quota, uuid.UUID(tenant_id))
        assert quota is not None
        assert quota.used_vms == len(live)
        assert quota.used_vcpus == sum(v.vcpus for v in live)
        assert quota.used_ips == s.scalar(
            select(func.count()).select_from(IpAllocation).where(IpAllocation.state == "allocated")
        )
        for host in s.scalars(select(Host).where(Host.vm_count > 0)):
            on_host = [v for v in live if v.host_id == host.id]
            assert host.vm_count == len(on_host), host.name
            assert host.used_vcpus == sum(v.vcpus for v in on_host), host.name
        assert sum(h.vm_count for h in s.scalars(select(Host))) == len(live)
        live_ids = {v.id for v in live}
        ports = list(s.scalars(select(Port)))
        assert all(p.vm_id in live_ids for p in ports), "orphan port"
        port_ids = {p.id for p in ports}
        for a in s.scalars(select(IpAllocation).where(IpAllocation.state == "allocated")):
            assert a.port_id in port_ids, "orphan address"
        unfinished = s.scalar(
            select(func.count())
            .select_from(Workflow)
            .where(Workflow.state.in_(("running", "rolling_back", "pending")))
        )
        assert unfinished == 0


@pytest.mark.slow
@pytest.mark.parametrize("step", ["place", "boot", "activate"])
def test_create_killed_before_each_step_resumes(
    db: Database, world: dict[str, str], step: str
) -> None:
    _crash(
        db,
        "create",
        step,
        {
            "name": "web",
            "count": 3,
            "tenant_id": world["tenant_id"],
            "networks": [world["network_id"]],
        },
    )
    with db.read_session() as s:
        wf = s.scalar(select(Workflow))
        assert wf is not None and wf.state == "running"
        steps = {x.name: x.state for x in s.scalars(select(WorkflowStep))}
        assert steps[step] == "running"
    rt = _recover(db)
    with db.read_session() as s:
        wf = s.scalar(select(Workflow))
        assert wf is not None and wf.state == "succeeded"
        live = list(s.scalars(select(Vm).where(Vm.state != "deleted")))
        assert sorted(v.name for v in live) == ["web-1", "web-2", "web-3"]
        assert {v.state for v in live} == {"active"}
        hosts = {v.id: s.get(Host, v.host_id).name for v in live}  # type: ignore[union-attr]
    for vm_id, host in hosts.items():
        assert rt.driver.status(host, vm_id) is not None, "the instance runs"
    _books_balance(db, world["tenant_id"])


@pytest.mark.slow
@pytest.mark.parametrize("step", ["destroy", "release"])
def test_delete_killed_before_each_step_resumes(
    db: Database, world: dict[str, str], step: str
) -> None:
    rt = Runtime(db, Settings(database_url=db.url), FakeComputeDriver())
    made = vms.create_vms(
        rt,
        SYSTEM,
        vms.VmRequest(
            name="web",
            flavor="s1.small",
            count=2,
            tenant_id=uuid.UUID(world["tenant_id"]),
            networks=(world["network_id"],),
        ),
    ).vms
    _crash(db, "delete", step, {"vm_id": str(made[0].id)})
    _recover(db)
    with db.read_session() as s:
        states = {v.name: v.state for v in s.scalars(select(Vm))}
    assert states == {"web-1": "deleted", "web-2": "active"}
    _books_balance(db, world["tenant_id"])


def test_a_step_that_fails_after_a_crash_rolls_back(db: Database, world: dict[str, str]) -> None:
    """Recovery that cannot go forward undoes instead: nothing orphaned either way."""
    _crash_args = {
        "name": "web",
        "count": 2,
        "tenant_id": world["tenant_id"],
        "networks": [world["network_id"]],
    }
    _crash(db, "create", "boot", _crash_args)
    rt = Runtime(db, Settings(database_url=db.url), FakeComputeDriver())
    rt.driver.fail_on["create"] = "hypervisor gone"  # type: ignore[attr-defined]
    outcomes = rt.engine.recover(force=True)
    assert [o.state for o in outcomes] == ["rolled_back"]
    with db.read_session() as s:
        assert set(s.scalars(select(Vm.state))) == {"deleted"}
    _books_balance(db, world["tenant_id"])
