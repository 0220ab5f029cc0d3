"""QEMU processes: where an instance's state lives, its command line, launch and end.

An instance on a host is a directory ``STATE_DIR/HOST/VM_ID`` holding ``spec.json``
(what to run), ``pid`` (the process while it runs), ``serial.log`` and ``qemu.log``.
Its sockets live under ``RUN_DIR`` with short names. A stopped instance is the
directory without a live process; a deleted one has no directory. Processes run in
their own session, so they outlive the controller, which finds them again by pid
and QMP socket after a restart.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import hypervisor_ifname
from fuyun.drivers.compute.base import InstanceSpec, NicSpec
from fuyun.drivers.compute.qemu.config import QemuConfig
from fuyun.drivers.compute.specjson import spec_from_json, spec_to_json


@dataclass(frozen=True)
class Instance:
    """The files of one instance on one host."""

    cfg: QemuConfig
    host: str
    vm_id: uuid.UUID

    @property
    def dir(self) -> Path:
        return self.cfg.state_dir / self.host / str(self.vm_id)

    @property
    def _key(self) -> str:
        return hashlib.sha1(f"{self.host}/{self.vm_id}".encode()).hexdigest()[:16]

    @property
    def qmp_socket(self) -> Path:
        return self.cfg.run_dir / f"{self._key}.qmp"

    @property
    def migration_socket(self) -> Path:
        return self.cfg.run_dir / f"{self._key}.mig"

    @property
    def serial_log(self) -> Path:
        return self.dir / "serial.log"

    def tap(self, nic: NicSpec) -> str:
        """The NIC's tap on this host: named as the host's network driver expects it."""
        return hypervisor_ifname(self.host, nic.port_id)

    def exists(self) -> bool:
        return (self.dir / "spec.json").exists()

    def read_spec(self) -> InstanceSpec:
        try:
            return spec_from_json((self.dir / "spec.json").read_text())
        except FileNotFoundError:
            raise DriverError(f"qemu: no instance {self.vm_id} on {self.host}") from None

    def write_spec(self, spec: InstanceSpec) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "spec.json.tmp"
        tmp.write_text(spec_to_json(replace(spec, host=self.host)))
        tmp.replace(self.dir / "spec.json")

    def pid(self) -> int | None:
        try:
            return int((self.dir / "pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        for sock in (self.qmp_socket, self.migration_socket):
            sock.unlink(missing_ok=True)


def command(
    cfg: QemuConfig, accel: str, inst: Instance, spec: InstanceSpec, incoming: str | None
) -> list[str]:
    argv = [
        cfg.binary,
        "-name", f"fuyun-{spec.name},debug-threads=on",
        "-uuid", str(spec.vm_id),
        "-machine", f"{cfg.machine},accel={accel}",
        "-cpu", "host" if accel == "kvm" else "qemu64",
        "-m", f"{spec.ram_mb}M",
        "-smp", str(spec.vcpus),
        "-nodefaults", "-no-user-config", "-display", "none",
        "-qmp", f"unix:{inst.qmp_socket},server=on,wait=off",
        "-serial", f"file:{inst.serial_log}",
    ]  # fmt: skip
    if cfg.kernel is not None:
        argv += ["-kernel", str(cfg.kernel), "-append", _append(cfg.append, spec)]
        if cfg.initrd is not None:
            argv += ["-initrd", str(cfg.initrd)]
    for i, nic in enumerate(spec.nics):
        argv += [
            "-netdev", f"tap,id=n{i},ifname={inst.tap(nic)},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n{i},mac={nic.mac},id=nic{i}",
        ]  # fmt: skip
    if incoming is not None:
        argv += ["-incoming", incoming]
    netns = cfg.host(inst.host).netns
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def _append(base: str, spec: InstanceSpec) -> str:
    """The kernel command line: the configured one, plus ``fuyun.ipN=ADDR[,ADDR…]`` per
    NIC with addresses, which a guest without DHCP reads to configure itself (the
    kernel ignores parameters it does not know and leaves them in /proc/cmdline)."""
    extra = [f"fuyun.ip{i}={','.join(nic.ips)}" for i, nic in enumerate(spec.nics) if nic.ips]
    return " ".join([base, *extra]) if extra else base


class Processes:
    """Launches QEMU and tells whether an instance's process lives; reaps its children."""

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def launch(self, argv: list[str], inst: Instance) -> int:
        inst.dir.mkdir(parents=True, exist_ok=True)
        inst.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        inst.qmp_socket.unlink(missing_ok=True)
        inst.serial_log.unlink(missing_ok=True)
        with open(inst.dir / "qemu.log", "wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a controller restart must not take VMs with it
            )
        with self._lock:
            self._children[proc.pid] = proc
        (inst.dir / "pid").write_text(str(proc.pid))
        return proc.pid

    def alive(self, inst: Instance) -> bool:
        pid = inst.pid()
        if pid is None:
            return False
        with self._lock:
            proc = self._children.get(pid)
            if proc is not None:
                if proc.poll() is None:
                    return True
                del self._children[pid]
                return False
        # Not our child (the controller restarted): trust /proc, and guard pid reuse.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        state = stat.rsplit(")", 1)[-1].split()[0]
        return state != "Z" and str(inst.vm_id).encode() in cmdline

    def wait_socket(self, inst: Instance, timeout_s: float) -> None:
        """Wait for QEMU's QMP socket; fail at once if the process ended instead."""
        deadline = time.monotonic() + timeout_s
        while not inst.qmp_socket.exists():
            if not self.alive(inst):
                raise DriverError("the QEMU process ended while starting")
            if time.monotonic() >= deadline:
                raise DriverError(f"no QMP socket after {timeout_s} s")
            time.sleep(0.01)

    def failure(self, inst: Instance) -> str:
        try:
            return (inst.dir / "qemu.log").read_text(errors="replace").strip()[-600:]
        except FileNotFoundError:
            return "no log"

    def wait_gone(self, inst: Instance, timeout_s: float) -> None:
        """Wait for the process to exit; kill it when it overstays."""
        deadline = time.monotonic() + timeout_s
        while self.alive(inst):
            if time.monotonic() >= deadline:
                self.kill(inst)
                deadline = time.monotonic() + timeout_s
            time.sleep(0.01)
        (inst.dir / "pid").unlink(missing_ok=True)

    def kill(self, inst: Instance) -> None:
        pid = inst.pid()
        if pid is not None and self.alive(inst):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
