"""A controller SIGKILLed just before each step of a move resumes it on restart.

The worker process moves a VM and kills itself at a step boundary; a fresh
controller (new drivers: the fake hypervisor re-learns what runs from the store)
recovers. The VM ends on the target with its addresses, the books balance, no
port keeps a second binding and the span holds the ToRs that have ports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services.bootstrap import resync_driver
from fuyun.services.migration.workflow import STEPS
from fuyun.services.runtime import Runtime
from fuyun.store.models import Host, Port, SpanMember, Switch, Vm, Workflow
from tests.services.migration.conftest import World
from tests.services.migration.test_workflow import identity

ROOT = Path(__file__).resolve().parents[3]
SOURCE, TARGET = "sz1-m01-t01-h01", "sz1-m01-t03-h01"


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_killed_before_each_step_resumes(world: World, step: str) -> None:
    vm = world.vm("a", SOURCE)
    before = identity(world.db, vm.id)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.crash_worker",
            world.db.url,
            "migrate",
            step,
            json.dumps({"vm_id": str(vm.id), "to": TARGET}),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    with world.db.read_session() as s:
        wf = s.scalar(select(Workflow).where(Workflow.kind == "vm.migrate"))
        assert wf is not None and wf.state == "running"
    rt = Runtime(world.db, Settings(database_url=world.db.url), FakeComputeDriver())
    resync_driver(world.db, rt.driver)
    if STEPS.index(step) > STEPS.index("migrate"):
        # A hypervisor outlives the controller: the move it was asked for happened.
        rt.driver.migrate(vm.id, SOURCE, TARGET)
    [outcome] = rt.engine.recover(force=True)
    assert outcome.state == "succeeded"
    assert world.host_of(vm.id) == TARGET
    assert identity(world.db, vm.id) == before
    assert rt.driver.status(TARGET, vm.id) is not None
    assert rt.driver.status(SOURCE, vm.id) is None
    with world.db.read_session() as s:
        assert s.get(Vm, vm.id).state == "active"  # type: ignore[union-attr]
        assert (
            s.scalar(select(func.count()).select_from(Port).where(Port.peer_host_id.is_not(None)))
            == 0
        )
        used = {
            h.name: (h.vm_count, h.used_vcpus)
            for h in s.scalars(select(Host).where(Host.vm_count > 0))
        }
        assert used == {TARGET: (1, 1)}
        span = {
            (name, m.ports) for m, name in s.execute(select(SpanMember, Switch.name).join(Switch))
        }
        assert span == {("sz1-m01-t03", 1)}
        t01 = s.scalar(select(Switch).where(Switch.name == "sz1-m01-t01"))
        assert t01 is not None and (t01.used_mac, t01.used_vlans) == (0, 0)
