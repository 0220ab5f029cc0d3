"""Real-hypervisor fixtures: the tiny guest (built once per session) and the QEMU lab."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.capabilities import missing
from tests.support.guest import READY, Guest, build_guest
from tests.support.qemu_lab import Lab, can_run_qemu, lab


@pytest.fixture(scope="session")
def guest() -> Guest:
    why = can_run_qemu()
    if why:
        missing("QEMU", why)
    try:
        return build_guest()
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        missing("guest image", f"cannot build it from Debian packages: {exc}")


@pytest.fixture(scope="module")
def qemu_lab() -> Iterator[Lab]:
    why = can_run_qemu()
    if why:
        missing("QEMU", why)
    with lab() as made:
        yield made


def wait_ready(serial: Path, timeout_s: float = 90.0) -> None:
    """Poll the guest's serial log until its init says it is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if serial.exists() and READY.encode() in serial.read_bytes():
            return
        time.sleep(0.05)
    tail = serial.read_bytes()[-400:] if serial.exists() else b"(no serial log)"
    raise AssertionError(f"guest not ready in {timeout_s} s: {tail!r}")
