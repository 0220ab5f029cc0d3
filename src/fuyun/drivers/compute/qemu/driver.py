"""The ``qemu`` compute driver: each VM a QEMU process controlled over QMP.

Power states map onto processes: running is a live process, stopped is the
instance's directory without one (``stop`` is a hard power-off through QMP
``quit``; the tiny guests have no ACPI daemon to honour a soft one). ``resize``
of a running VM restarts its process with the new sizes, as a cold resize does.
Disks are not managed yet: a VM boots the configured kernel and initramfs, or
idles in firmware when none is configured. Every method is idempotent, and
operations on one VM are serialized by a per-VM lock.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

from fuyun.domain.errors import DriverError
from fuyun.drivers.compute.base import InstanceSpec, InstanceStatus, MigrationStats, PowerState
from fuyun.drivers.compute.qemu import accel
from fuyun.drivers.compute.qemu.config import QemuConfig
from fuyun.drivers.compute.qemu.migration import Sides, live_migrate
from fuyun.drivers.compute.qemu.monitor import session
from fuyun.drivers.compute.qemu.plug import NicPlug, make_plug
from fuyun.drivers.compute.qemu.process import Instance, Processes, command

_STOPPED = ("shutdown", "internal-error", "guest-panicked")


class QemuComputeDriver:
    name = "qemu"

    def __init__(self, config: QemuConfig | None = None) -> None:
        self.config = config or QemuConfig.from_env()
        self._procs = Processes()
        self._choice: accel.Choice | None = None
        self._guard = threading.Lock()
        self._locks: dict[uuid.UUID, threading.RLock] = {}

    # -- helpers ------------------------------------------------------------------

    @property
    def accelerator(self) -> accel.Choice:
        """KVM or TCG, probed once on first use; ``.reason`` says why."""
        with self._guard:
            if self._choice is None:
                self._choice = accel.choose(self.config)
            return self._choice

    def _lock(self, vm_id: uuid.UUID) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(vm_id, threading.RLock())

    def _inst(self, host: str, vm_id: uuid.UUID) -> Instance:
        return Instance(self.config, host, vm_id)

    def _plug(self, host: str) -> NicPlug:
        h = self.config.host(host)
        return make_plug(h.plug, h.netns, h.ovsdb)

    def _boot(self, inst: Instance, spec: InstanceSpec, incoming: str | None = None) -> None:
        argv = command(self.config, self.accelerator.accel, inst, spec, incoming)
        self._procs.launch(argv, inst)
        try:
            self._procs.wait_socket(inst, self.config.timeout_s)
            with session(inst.qmp_socket, timeout_s=self.config.timeout_s) as mon:
                mon.cmd("query-status")
            self._plug_all(inst, spec)
        except DriverError as exc:
            self._procs.kill(inst)
            self._procs.wait_gone(inst, self.config.timeout_s)
            raise DriverError(
                f"qemu: {spec.vm_id} did not start on {inst.host}: {exc.message}; "
                f"{self._procs.failure(inst)}"
            ) from exc

    def _plug_all(self, inst: Instance, spec: InstanceSpec) -> None:
        plug = self._plug(inst.host)
        for nic in spec.nics:
            plug.plug(inst.tap(nic), nic, spec.vm_id)

    def _unplug(self, inst: Instance, spec: InstanceSpec) -> None:
        plug = self._plug(inst.host)
        for nic in spec.nics:
            plug.unplug(inst.tap(nic))

    def _end(self, inst: Instance, spec: InstanceSpec) -> None:
        """Power off (QMP ``quit``, then SIGKILL if it lingers) and unplug the taps."""
        if self._procs.alive(inst):
            try:
                with session(inst.qmp_socket, timeout_s=2.0) as mon:
                    mon.cmd("quit")
            except DriverError:
                self._procs.kill(inst)
            self._procs.wait_gone(inst, self.config.timeout_s)
        self._unplug(inst, spec)

    # -- the contract -------------------------------------------------------------

    def create(self, spec: InstanceSpec) -> None:
        inst = self._inst(spec.host, spec.vm_id)
        with self._lock(spec.vm_id):
            if inst.exists() and self._procs.alive(inst):
                return
            inst.write_spec(spec)
            self._boot(inst, spec)

    def start(self, host: str, vm_id: uuid.UUID) -> None:
        inst = self._inst(host, vm_id)
        with self._lock(vm_id):
            spec = inst.read_spec()
            if not self._procs.alive(inst):
                self._boot(inst, spec)

    def stop(self, host: str, vm_id: uuid.UUID) -> None:
        inst = self._inst(host, vm_id)
        with self._lock(vm_id):
            self._end(inst, inst.read_spec())

    def reboot(self, host: str, vm_id: uuid.UUID) -> None:
        inst = self._inst(host, vm_id)
        with self._lock(vm_id):
            spec = inst.read_spec()
            if not self._procs.alive(inst):
                self._boot(inst, spec)
                return
            with session(inst.qmp_socket) as mon:
                mon.cmd("system_reset")

    def resize(self, host: str, vm_id: uuid.UUID, vcpus: int, ram_mb: int) -> None:
        inst = self._inst(host, vm_id)
        with self._lock(vm_id):
            spec = inst.read_spec()
            if (spec.vcpus, spec.ram_mb) == (vcpus, ram_mb):
                return
            new = replace(spec, vcpus=vcpus, ram_mb=ram_mb)
            running = self._procs.alive(inst)
            if running:
                self._end(inst, spec)
            inst.write_spec(new)
            if running:
                self._boot(inst, new)

    def delete(self, host: str, vm_id: uuid.UUID) -> None:
        inst = self._inst(host, vm_id)
        with self._lock(vm_id):
            if not inst.dir.exists():
                return
            if inst.exists():
                self._end(inst, inst.read_spec())
            else:
                self._procs.kill(inst)
            inst.remove()

    def migrate(
        self,
        vm_id: uuid.UUID,
        source_host: str,
        dest_host: str,
        *,
        max_downtime_ms: int = 300,
    ) -> MigrationStats:
        source, dest = self._inst(source_host, vm_id), self._inst(dest_host, vm_id)
        with self._lock(vm_id):
            if not source.exists():
                if dest.exists() and not (dest.dir / "incoming").exists():
                    return MigrationStats(0.0, 0.0, 0)  # already moved: a replay
                raise DriverError(f"qemu: no instance {vm_id} on {source_host}")
            spec = source.read_spec()
            if dest.dir.exists():
                if self._switched_over(source, dest):
                    # Interrupted after the switchover: the guest runs on dest. Finish.
                    (dest.dir / "incoming").unlink(missing_ok=True)
                    self._end(source, spec)
                    source.remove()
                    return MigrationStats(0.0, 0.0, 0)
                self._end(dest, spec)  # debris of an attempt that did not complete
                dest.remove()
            if not self._procs.alive(source):  # a stopped VM moves as its definition
                dest.write_spec(spec)
                source.remove()
                return MigrationStats(0.0, 0.0, 0)
            sides = Sides(
                boot=self._boot,
                end=self._end,
                unplug=self._unplug,
                plug=self._plug_all,
                alive=self._procs.alive,
                timeout_s=self.config.timeout_s,
                migration_timeout_s=self.config.migration_timeout_s,
            )
            return live_migrate(sides, spec, source, dest, max_downtime_ms)

    def _qmp_status(self, inst: Instance) -> str | None:
        if not self._procs.alive(inst):
            return None
        try:
            with session(inst.qmp_socket, timeout_s=2.0) as mon:
                return str(mon.cmd("query-status")["status"])
        except DriverError:
            return None

    def _switched_over(self, source: Instance, dest: Instance) -> bool:
        """Did an interrupted migration complete: the guest runs on dest, source is done?"""
        return self._qmp_status(dest) == "running" and self._qmp_status(source) in (
            None,
            "postmigrate",
        )

    def status(self, host: str, vm_id: uuid.UUID) -> InstanceStatus | None:
        inst = self._inst(host, vm_id)
        if not inst.exists() or (inst.dir / "incoming").exists():
            return None
        try:
            spec = inst.read_spec()
        except DriverError:
            return None  # deleted meanwhile
        if not self._procs.alive(inst):
            return InstanceStatus(vm_id, host, PowerState.STOPPED, spec.vcpus, spec.ram_mb)
        try:
            with session(inst.qmp_socket, timeout_s=2.0) as mon:
                state = mon.cmd("query-status")["status"]
                vcpus = len(mon.cmd("query-cpus-fast"))
                ram_mb = mon.cmd("query-memory-size-summary")["base-memory"] >> 20
        except DriverError:
            # Died meanwhile, or alive but not answering (starting, wedged): in the
            # latter case report what it was given.
            power = PowerState.RUNNING if self._procs.alive(inst) else PowerState.STOPPED
            return InstanceStatus(vm_id, host, power, spec.vcpus, spec.ram_mb)
        power = PowerState.STOPPED if state in _STOPPED else PowerState.RUNNING
        return InstanceStatus(vm_id, host, power, vcpus, ram_mb)

    def list_instances(self, host: str) -> list[InstanceStatus]:
        root = self.config.state_dir / host
        found = []
        for entry in sorted(root.iterdir()) if root.is_dir() else ():
            try:
                vm_id = uuid.UUID(entry.name)
            except ValueError:
                continue
            status = self.status(host, vm_id)
            if status is not None:
                found.append(status)
        return found
