"""The ``qemu`` driver against real QEMU processes in namespaces this test made.

The conformance suite runs with no guest OS (the firmware idles), which is all the
contract needs and keeps it quick; the tests below boot the tiny Debian guest to
show what only a real guest can: its NIC carries the port's MAC on the host's
bridge, the accelerator probe chooses honestly, a died process is seen and
restarted, and a live migration keeps it answering pings.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fuyun.domain.errors import DriverError
from fuyun.drivers.compute import InstanceSpec, NicSpec
from fuyun.drivers.compute.base import PowerState
from fuyun.drivers.compute.qemu import HostConfig, QemuComputeDriver
from fuyun.drivers.compute.qemu.monitor import session
from fuyun.drivers.compute.qemu.process import Instance
from tests.drivers.compute.conformance import ComputeDriverConformance, Harness
from tests.support.guest import Guest, guest_ip, wait_ready
from tests.support.qemu_lab import Lab, Prober, sh

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "qemu"


@pytest.fixture(scope="module")
def bare_driver(qemu_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> QemuComputeDriver:
    state = tmp_path_factory.mktemp("qemu-state")
    return QemuComputeDriver(qemu_lab.config(state, None, accel="tcg"))


@pytest.fixture
def harness(bare_driver: QemuComputeDriver, qemu_lab: Lab) -> Iterator[Harness]:
    h = Harness(bare_driver, tuple(qemu_lab.hosts))  # type: ignore[arg-type]
    yield h
    h.cleanup()


@pytest.mark.slow
class TestQemuConformance(ComputeDriverConformance):
    pass


@pytest.fixture(scope="module")
def guest_driver(
    qemu_lab: Lab, guest: Guest, tmp_path_factory: pytest.TempPathFactory
) -> QemuComputeDriver:
    state = tmp_path_factory.mktemp("qemu-guest-state")
    return QemuComputeDriver(qemu_lab.config(state, guest))


def _spec(host: str, ram_mb: int = 128) -> InstanceSpec:
    vm_id = uuid.uuid4()
    mac = f"52:54:00:7e:{vm_id.bytes[0]:02x}:{max(vm_id.bytes[1], 1):02x}"
    return InstanceSpec(
        vm_id, f"g-{vm_id.hex[:6]}", host, 1, ram_mb, 1, "tiny",
        (NicSpec(uuid.uuid4(), mac, 100, "lab"),),
    )  # fmt: skip


@pytest.mark.slow
def test_accelerator_probe_chooses_and_says_why(guest_driver: QemuComputeDriver) -> None:
    choice = guest_driver.accelerator
    assert choice.accel in ("kvm", "tcg") and choice.reason
    if not os.path.exists("/dev/kvm"):
        assert choice.accel == "tcg"


@pytest.mark.slow
def test_guest_nic_has_the_port_mac_on_the_host_bridge(
    guest_driver: QemuComputeDriver, qemu_lab: Lab
) -> None:
    host = next(iter(qemu_lab.hosts))
    spec = _spec(host)
    guest_driver.create(spec)
    try:
        inst = Instance(guest_driver.config, host, spec.vm_id)
        wait_ready(inst.serial_log)
        with session(inst.qmp_socket) as mon:
            [nic] = mon.cmd("query-rx-filter")
        assert nic["main-mac"] == spec.nics[0].mac
        link = sh("ip", "-n", qemu_lab.hosts[host], "-d", "link", "show", inst.tap(spec.nics[0]))
        assert "master br0" in link
        assert qemu_lab.ping(guest_ip(spec.nics[0].mac), count=3)
    finally:
        guest_driver.delete(host, spec.vm_id)
    assert guest_driver.status(host, spec.vm_id) is None


@pytest.mark.slow
def test_a_process_that_died_is_reported_stopped_and_start_revives_it(
    guest_driver: QemuComputeDriver, qemu_lab: Lab
) -> None:
    host = next(iter(qemu_lab.hosts))
    spec = _spec(host)
    guest_driver.create(spec)
    try:
        inst = Instance(guest_driver.config, host, spec.vm_id)
        pid = inst.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}/cmdline").exists() and time.monotonic() < deadline:
            if guest_driver.status(host, spec.vm_id).power is PowerState.STOPPED:  # type: ignore[union-attr]
                break  # reaped by the driver: it saw the death
            time.sleep(0.01)
        [mine] = [i for i in guest_driver.list_instances(host) if i.vm_id == spec.vm_id]
        assert mine.power is PowerState.STOPPED
        guest_driver.start(host, spec.vm_id)
        assert inst.pid() != pid
        st = guest_driver.status(host, spec.vm_id)
        assert st is not None and st.power is PowerState.RUNNING
    finally:
        guest_driver.delete(host, spec.vm_id)


@pytest.mark.slow
def test_a_migration_that_cannot_finish_in_time_is_cancelled_and_the_vm_stays(
    guest_driver: QemuComputeDriver, qemu_lab: Lab
) -> None:
    src, dst = tuple(qemu_lab.hosts)
    impatient = QemuComputeDriver(replace(guest_driver.config, migration_timeout_s=0.001))
    spec = _spec(src, ram_mb=256)
    impatient.create(spec)
    try:
        wait_ready(Instance(impatient.config, src, spec.vm_id).serial_log)
        with pytest.raises(DriverError, match="took over"):
            impatient.migrate(spec.vm_id, src, dst)
        st = impatient.status(src, spec.vm_id)
        assert st is not None and st.power is PowerState.RUNNING
        assert impatient.status(dst, spec.vm_id) is None
        assert not Instance(impatient.config, dst, spec.vm_id).dir.exists()
        with session(Instance(impatient.config, src, spec.vm_id).qmp_socket) as mon:
            assert mon.cmd("query-status")["status"] == "running"
        assert qemu_lab.ping(guest_ip(spec.nics[0].mac), count=3, timeout_s=2)
    finally:
        for host in (src, dst):
            impatient.delete(host, spec.vm_id)


@pytest.mark.slow
def test_a_destination_that_cannot_start_leaves_the_vm_on_the_source(
    guest_driver: QemuComputeDriver, qemu_lab: Lab
) -> None:
    src = next(iter(qemu_lab.hosts))
    broken = replace(
        guest_driver.config,
        hosts={**guest_driver.config.hosts, "nowhere": HostConfig(netns="fyq-no-such-ns")},
    )
    driver = QemuComputeDriver(broken)
    spec = _spec(src)
    driver.create(spec)
    try:
        with pytest.raises(DriverError, match="did not start on nowhere"):
            driver.migrate(spec.vm_id, src, "nowhere")
        st = driver.status(src, spec.vm_id)
        assert st is not None and st.power is PowerState.RUNNING
        assert driver.status("nowhere", spec.vm_id) is None
    finally:
        driver.delete(src, spec.vm_id)


@pytest.mark.slow
def test_live_migration_keeps_the_guest_answering_pings(
    guest_driver: QemuComputeDriver, qemu_lab: Lab
) -> None:
    src, dst = tuple(qemu_lab.hosts)
    spec = _spec(src, ram_mb=256)
    ip = guest_ip(spec.nics[0].mac)
    guest_driver.create(spec)
    try:
        wait_ready(Instance(guest_driver.config, src, spec.vm_id).serial_log)
        assert qemu_lab.ping(ip, count=5, timeout_s=3), "the guest does not answer before"
        prober = Prober(qemu_lab, ip, interval_ms=10)
        assert qemu_lab.ping(ip, count=5)  # some probes before the move
        stats = guest_driver.migrate(spec.vm_id, src, dst, max_downtime_ms=300)
        assert qemu_lab.ping(ip, count=20)  # and after it, answered from the new host
        probes = prober.stop()
        st = guest_driver.status(dst, spec.vm_id)
        assert st is not None and st.power is PowerState.RUNNING
        assert guest_driver.status(src, spec.vm_id) is None
        dest_tap = Instance(guest_driver.config, dst, spec.vm_id).tap(spec.nics[0])
        assert "master br0" in sh("ip", "-n", qemu_lab.hosts[dst], "link", "show", dest_tap)
        report = {
            "total_ms": stats.total_ms,
            "downtime_ms": stats.downtime_ms,
            "transferred_bytes": stats.transferred_bytes,
            "probes_sent": probes.sent,
            "probes_lost": probes.lost,
            "probe_interval_ms": probes.interval_ms,
            "longest_gap_ms": round(probes.longest_gap_ms, 1),
            "accelerator": guest_driver.accelerator.accel,
        }
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "live-migration.json").write_text(json.dumps(report, indent=1))
        print("live migration:", report)
        assert probes.received > 0 and probes.sent > probes.lost
        assert stats.total_ms > 0 and stats.transferred_bytes > 0
    finally:
        for host in (src, dst):
            guest_driver.delete(host, spec.vm_id)


@pytest.mark.slow
def test_a_migration_interrupted_after_the_switchover_is_finished_on_replay(
    bare_driver: QemuComputeDriver, qemu_lab: Lab
) -> None:
    """A controller that died between QEMU's completion and the clean-up: the replay must
    not kill the destination (where the guest now runs) nor move it back."""
    src, dst = tuple(qemu_lab.hosts)
    spec = _spec(src, ram_mb=64)
    bare_driver.create(spec)
    source = Instance(bare_driver.config, src, spec.vm_id)
    dest = Instance(bare_driver.config, dst, spec.vm_id)
    try:
        # The first half of a migration, as the driver does it, then "the crash".
        dest.write_spec(spec)
        (dest.dir / "incoming").touch()
        bare_driver._boot(dest, spec, f"unix:{dest.migration_socket}")
        with session(source.qmp_socket) as mon:
            mon.cmd("migrate", uri=f"unix:{dest.migration_socket}")
            deadline = time.monotonic() + 30
            while mon.cmd("query-migrate").get("status") != "completed":
                assert time.monotonic() < deadline
                time.sleep(0.01)
        dest_pid = dest.pid()
        stats = bare_driver.migrate(spec.vm_id, src, dst)
        assert (stats.total_ms, stats.transferred_bytes) == (0.0, 0)
        assert dest.pid() == dest_pid  # the same destination process: not restarted
        st = bare_driver.status(dst, spec.vm_id)
        assert st is not None and st.power is PowerState.RUNNING
        assert bare_driver.status(src, spec.vm_id) is None and not source.dir.exists()
    finally:
        for host in (src, dst):
            bare_driver.delete(host, spec.vm_id)


@pytest.mark.slow
def test_the_driver_works_from_a_thread_that_runs_its_own_event_loop(
    bare_driver: QemuComputeDriver, qemu_lab: Lab
) -> None:
    """QMP is asyncio inside; a caller's running loop (an ASGI server's, a browser
    driver's) must neither be borrowed nor break the driver."""
    host = next(iter(qemu_lab.hosts))
    spec = _spec(host, ram_mb=64)

    async def inside_a_loop() -> PowerState | None:
        bare_driver.create(spec)
        bare_driver.stop(host, spec.vm_id)
        bare_driver.start(host, spec.vm_id)
        st = bare_driver.status(host, spec.vm_id)
        return st.power if st else None

    try:
        assert asyncio.run(inside_a_loop()) is PowerState.RUNNING
    finally:
        bare_driver.delete(host, spec.vm_id)
