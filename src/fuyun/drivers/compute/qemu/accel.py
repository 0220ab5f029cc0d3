"""Choosing the accelerator: KVM when it really runs a guest, TCG otherwise.

``/dev/kvm`` existing is not enough: nested or emulated KVM may run firmware and
then fail a Linux guest with an emulation error. The probe therefore boots the
configured guest kernel under KVM and waits for its first console line; without a
kernel it settles for QEMU starting with KVM enabled (``query-kvm``). The result,
and why, is kept on the driver and logged, so an operator sees which one runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fuyun.domain.errors import DriverError
from fuyun.drivers.compute.qemu.config import QemuConfig
from fuyun.drivers.compute.qemu.monitor import session

log = logging.getLogger("fuyun.qemu")


@dataclass(frozen=True)
class Choice:
    accel: str  # kvm | tcg
    reason: str


def _kvm_opens() -> str | None:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as exc:
        return f"/dev/kvm: {exc.strerror}"
    os.close(fd)
    return None


def _probe_kvm(cfg: QemuConfig, timeout_s: float) -> str | None:
    """None when a guest runs under KVM; otherwise why not."""
    with tempfile.TemporaryDirectory(prefix="fyaccel") as tmp:
        sock, serial = Path(tmp) / "q", Path(tmp) / "serial"
        argv = [
            cfg.binary, "-machine", f"{cfg.machine},accel=kvm", "-cpu", "host",
            "-m", "128M", "-nodefaults", "-display", "none", "-no-user-config",
            "-qmp", f"unix:{sock},server=on,wait=off", "-serial", f"file:{serial}",
        ]  # fmt: skip
        if cfg.kernel is not None:
            argv += ["-kernel", str(cfg.kernel), "-append", "console=ttyS0 panic=-1"]
            if cfg.initrd is not None:
                argv += ["-initrd", str(cfg.initrd)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            with session(sock, timeout_s=5.0) as mon:
                if not mon.cmd("query-kvm").get("enabled"):
                    return "QEMU did not enable KVM"
                if cfg.kernel is None:
                    return None
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    status = mon.cmd("query-status")["status"]
                    if status in ("internal-error", "shutdown", "guest-panicked"):
                        return f"the probe guest stopped under KVM ({status})"
                    if serial.exists() and b"Linux version" in serial.read_bytes():
                        return None
                    time.sleep(0.05)
                return f"the probe guest printed nothing under KVM in {timeout_s:.0f} s"
        except DriverError as exc:
            if proc.poll() is not None and proc.stdout is not None:
                said = proc.stdout.read().decode(errors="replace").strip().splitlines()
                return f"QEMU with KVM exited: {said[0] if said else proc.returncode}"
            return f"QEMU with KVM did not start: {exc.message}"
        finally:
            proc.kill()
            proc.wait()


def choose(cfg: QemuConfig, *, probe_timeout_s: float = 5.0) -> Choice:
    if shutil.which(cfg.binary) is None:
        raise DriverError(f"qemu: {cfg.binary} is not installed")
    if cfg.accel == "tcg":
        return Choice("tcg", "configured")
    if cfg.accel == "kvm":
        return Choice("kvm", "configured")
    why_not = _kvm_opens() or _probe_kvm(cfg, probe_timeout_s)
    choice = Choice("kvm", "probe booted a guest") if why_not is None else Choice("tcg", why_not)
    log.info("qemu accelerator: %s (%s)", choice.accel, choice.reason)
    return choice
