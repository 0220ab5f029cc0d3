"""The compute-driver conformance suite: one contract, every driver.

A driver's test module subclasses :class:`ComputeDriverConformance` and provides a
``harness`` fixture. What a backend cannot do is declared, not skipped: a
harness with ``migration=False`` (libvirt's ``test:///default`` has no migration)
runs the tests that prove migrate *refuses* cleanly — a ``DriverError`` naming
the reason, and the instance still running where it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from fuyun.domain.errors import DriverError
from fuyun.drivers.compute import ComputeDriver, InstanceSpec, NicSpec
from fuyun.drivers.compute.base import PowerState


@dataclass
class Harness:
    driver: ComputeDriver
    hosts: tuple[str, str]
    # Capabilities; False means the backend declares it cannot, and the suite checks
    # that it says so instead of half-doing it.
    migration: bool = True
    no_migration_reason: str = ""
    created: list[tuple[str, uuid.UUID]] = field(default_factory=list)

    def spec(self, *, host: str | None = None, vcpus: int = 1, ram_mb: int = 64) -> InstanceSpec:
        vm_id = uuid.uuid4()
        mac = "52:54:00:{:02x}:{:02x}:{:02x}".format(*tuple(vm_id.bytes[:3]))
        spec = InstanceSpec(
            vm_id=vm_id,
            name=f"conf-{vm_id.hex[:6]}",
            host=host or self.hosts[0],
            vcpus=vcpus,
            ram_mb=ram_mb,
            disk_gb=1,
            image="none",
            nics=(NicSpec(uuid.uuid4(), mac, 100, "conf"),),
        )
        self.created.append((spec.host, vm_id))
        return spec

    def cleanup(self) -> None:
        for host in self.hosts:
            for _, vm_id in self.created:
                self.driver.delete(host, vm_id)


class ComputeDriverConformance:
    """Every compute driver passes these; subclasses provide the ``harness`` fixture."""

    def test_create_runs_the_instance_with_its_sizes(self, harness: Harness) -> None:
        d, spec = harness.driver, harness.spec(vcpus=2, ram_mb=96)
        d.create(spec)
        st = d.status(spec.host, spec.vm_id)
        assert st is not None
        assert (st.power, st.vcpus, st.ram_mb, st.host) == (PowerState.RUNNING, 2, 96, spec.host)
        assert spec.vm_id in {i.vm_id for i in d.list_instances(spec.host)}
        assert spec.vm_id not in {i.vm_id for i in d.list_instances(harness.hosts[1])}

    def test_create_is_idempotent(self, harness: Harness) -> None:
        d, spec = harness.driver, harness.spec()
        d.create(spec)
        d.create(spec)
        mine = [i for i in d.list_instances(spec.host) if i.vm_id == spec.vm_id]
        assert len(mine) == 1 and mine[0].power is PowerState.RUNNING

    def test_stop_and_start_are_idempotent(self, harness: Harness) -> None:
        d, spec = harness.driver, harness.spec()
        d.create(spec)
        d.stop(spec.host, spec.vm_id)
        d.stop(spec.host, spec.vm_id)
        st = d.status(spec.host, spec.vm_id)
        assert st is not None and st.power is PowerState.STOPPED
        d.start(spec.host, spec.vm_id)
        d.start(spec.host, spec.vm_id)
        st = d.status(spec.host, spec.vm_id)
        assert st is not None and st.power is PowerState.RUNNING

    def test_reboot_keeps_it_running(self, harness: Harness) -> None:
        d, spec = harness.driver, harness.spec()
        d.create(spec)
        d.reboot(spec.host, spec.vm_id)
        st = d.status(spec.host, spec.vm_id)
        assert st is not None and st.power is PowerState.RUNNING

    def test_resize_of_a_stopped_instance_shows_after_start(self, harness: Harness) -> None:
        d, spec = harness.driver, harness.spec()
        d.create(spec)
        d.stop(spec.host, spec.vm_id)
        d.resize(spec.host, spec.vm_id, 2, 128)
        d.resize(spec.host, spec.vm_id, 2, 128)
        d.start(spec.host, spec.vm_id)
        st = d.status(spec.host, spec.vm_id)
        assert st is not None and (st.power, st.vcpus, st.ram_mb) == (PowerState.RUNNING, 2, 128)

    def test_delete_is_idempotent_and_forgets(self, harness: Harness) -> None:
        d, spec = harness.driver, harness.spec()
        d.create(spec)
        d.delete(spec.host, spec.vm_id)
        d.delete(spec.host, spec.vm_id)
        d.delete(spec.host, uuid.uuid4())
        assert d.status(spec.host, spec.vm_id) is None
        assert spec.vm_id not in {i.vm_id for i in d.list_instances(spec.host)}

    def test_power_verbs_on_a_missing_instance_raise(self, harness: Harness) -> None:
        d, host, ghost = harness.driver, harness.hosts[0], uuid.uuid4()
        assert d.status(host, ghost) is None
        for verb in ("start", "stop", "reboot"):
            with pytest.raises(DriverError):
                getattr(d, verb)(host, ghost)

    def test_migrate_of_a_missing_instance_raises(self, harness: Harness) -> None:
        with pytest.raises(DriverError):
            harness.driver.migrate(uuid.uuid4(), *harness.hosts)

    def test_live_migration_moves_a_running_instance(self, harness: Harness) -> None:
        d, spec = harness.driver, harness.spec()
        src, dst = harness.hosts
        d.create(spec)
        if not harness.migration:
            with pytest.raises(DriverError) as refused:
                d.migrate(spec.vm_id, src, dst)
            assert harness.no_migration_reason in refused.value.message
            st = d.status(src, spec.vm_id)
            assert st is not None and st.power is PowerState.RUNNING
            assert d.status(dst, spec.vm_id) is None
            return
        stats = d.migrate(spec.vm_id, src, dst, max_downtime_ms=300)
        assert stats.total_ms > 0 and stats.downtime_ms >= 0 and stats.transferred_bytes >= 0
        st = d.status(dst, spec.vm_id)
        assert st is not None and (st.power, st.vcpus, st.ram_mb) == (
            PowerState.RUNNING,
            spec.vcpus,
            spec.ram_mb,
        )
        assert d.status(src, spec.vm_id) is None
        assert spec.vm_id not in {i.vm_id for i in d.list_instances(src)}
        # A replay after a crash: already there, nothing moves.
        again = d.migrate(spec.vm_id, src, dst)
        assert (again.total_ms, again.downtime_ms, again.transferred_bytes) == (0.0, 0.0, 0)
        d.stop(dst, spec.vm_id)
        d.start(dst, spec.vm_id)

    def test_migration_keeps_a_stopped_instance_stopped(self, harness: Harness) -> None:
        # A stopped VM moves as its definition: every backend can, live migration or not.
        d, spec = harness.driver, harness.spec()
        src, dst = harness.hosts
        d.create(spec)
        d.stop(src, spec.vm_id)
        d.migrate(spec.vm_id, src, dst)
        st = d.status(dst, spec.vm_id)
        assert st is not None and st.power is PowerState.STOPPED
        assert d.status(src, spec.vm_id) is None
