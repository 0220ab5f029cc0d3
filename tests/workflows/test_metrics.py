"""Workflow series: ends by kind and state, durations, and the step that failed."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from fuyun.config import Settings
from fuyun.domain.errors import DriverError
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def rt(tmp_path: object) -> Runtime:
    db = Database(f"sqlite:///{tmp_path}/wf.db")
    upgrade(db.engine)
    settings = Settings(database_url=db.url)
    runtime = Runtime(db, settings, FakeComputeDriver())
    bootstrap(db, settings, runtime.driver, fabric="small", runtime=runtime)
    return runtime


def test_ends_durations_and_failed_steps_are_counted(rt: Runtime) -> None:
    tenant = tenants.create_tenant(rt.db, SYSTEM, name="studio")
    ctx = networks.Networking(db=rt.db, settings=rt.settings)
    net = networks.create_network(
        ctx, SYSTEM, networks.NetworkRequest(name="web", cidr="10.1.0.0/24", tenant_id=tenant.id)
    )

    def create(name: str) -> None:
        request = vms.VmRequest(
            name=name, flavor="s1.small", tenant_id=tenant.id, networks=(str(net.id),)
        )
        vms.create_vms(rt, SYSTEM, request)

    ok = {"kind": "vm.create", "state": "succeeded"}
    undone = {"kind": "vm.create", "state": "rolled_back"}
    before = (
        sample("fuyun_workflows_finished_total", **ok),
        sample("fuyun_workflows_finished_total", **undone),
        sample("fuyun_workflow_duration_seconds_count", **ok),
        sample("fuyun_workflow_step_failures_total", kind="vm.create", step="boot"),
    )
    create(f"ok-{uuid.uuid4().hex[:6]}")
    rt.driver.fail_on["create"] = "hypervisor gone"  # type: ignore[attr-defined]
    with pytest.raises(DriverError):
        create(f"bad-{uuid.uuid4().hex[:6]}")
    after = (
        sample("fuyun_workflows_finished_total", **ok),
        sample("fuyun_workflows_finished_total", **undone),
        sample("fuyun_workflow_duration_seconds_count", **ok),
        sample("fuyun_workflow_step_failures_total", kind="vm.create", step="boot"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]
