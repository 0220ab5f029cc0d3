"""Two hand-started ``libvirtd`` daemons on one machine, as two hypervisor hosts.

Both run in one network namespace this module makes (their TCP listeners and the
guests' taps stay in it), each under ``unshare --mount`` with private bind mounts
over ``/run/libvirt``, ``/var/lib/libvirt``, ``/var/cache/libvirt``,
``/var/log/libvirt`` and ``/etc/libvirt``, its own ``host_uuid`` and TCP port on
127.0.0.1 (no auth: loopback inside a private namespace). The test process talks
to each through its unix socket, reachable at the bind mount's source; the
daemons talk to each other over TCP for peer-to-peer migration, with the data
channel given per call (``tcp://127.0.0.1``). Without systemd the recipe needs a
``libvirt-qemu`` system user and ``qemu.conf`` running guests as root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support.qemu_lab import sh

PRIVATE = ("run/libvirt", "var/lib/libvirt", "var/cache/libvirt", "var/log/libvirt", "etc/libvirt")

LIBVIRTD_CONF = """listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "{port}"
auth_tcp = "none"
auth_unix_rw = "none"
host_uuid = "{uuid}"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""

QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
"""


def can_run_libvirtd() -> str | None:
    for tool in ("libvirtd", "unshare", "ip", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian libvirt-daemon, util-linux, qemu-system-x86)"
    try:
        import libvirt  # noqa: F401
    except ImportError as exc:
        return f"libvirt-python: {exc}"
    return None


def prepare_machine() -> None:
    """What a hand-started libvirtd needs that a package's systemd units would make."""
    for d in PRIVATE:
        Path("/", d).mkdir(parents=True, exist_ok=True)
    if subprocess.run(["id", "libvirt-qemu"], capture_output=True, check=False).returncode:
        sh("useradd", "--system", "--no-create-home", "libvirt-qemu")


@dataclass
class Daemon:
    name: str
    root: Path
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "run/libvirt/libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def peer_uri(self) -> str:
        return f"qemu+tcp://127.0.0.1:{self.port}/system"

    def log(self) -> str:
        path = self.root / "var/log/libvirt/libvirtd.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


def _start(netns: str, base: Path, name: str, port: int) -> Daemon:
    root = base / name
    for d in PRIVATE:
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/libvirt/libvirtd.conf").write_text(
        LIBVIRTD_CONF.format(port=port, uuid=uuid.uuid4())
    )
    (root / "etc/libvirt/qemu.conf").write_text(QEMU_CONF)
    mounts = " && ".join(f"mount --bind {root / d} /{d}" for d in PRIVATE)
    daemon_argv = (
        "libvirtd --listen --pid-file /run/libvirt/libvirtd.pid -f /etc/libvirt/libvirtd.conf"
    )
    script = f"{mounts} && exec {daemon_argv}"
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, "unshare", "--mount", "--propagation", "private",
         "sh", "-c", script],
        stdout=subprocess.DEVNULL, stderr=(root / "stderr").open("wb"),
    )  # fmt: skip
    daemon = Daemon(name, root, port, proc)
    deadline = time.monotonic() + 30
    while not daemon.socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            err = (root / "stderr").read_text(errors="replace")
            raise RuntimeError(f"libvirtd {name} did not start: {err[-800:]} {daemon.log()}")
        time.sleep(0.05)
    return daemon


def _kill_guests(daemon: Daemon) -> None:
    """QEMU processes outlive their daemon: end any a failed test left behind."""
    for pidfile in (daemon.root / "run/libvirt/qemu").glob("*.pid"):
        with suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


@contextmanager
def two_daemons() -> Iterator[tuple[Daemon, Daemon, str]]:
    """Two daemons in one fresh namespace; yields them and the namespace's name."""
    prepare_machine()
    tag = uuid.uuid4().hex[:6]
    netns = f"fyl{tag}"
    base = Path(tempfile.mkdtemp(prefix=f"fyl{tag}", dir="/tmp"))
    sh("ip", "netns", "add", netns)
    daemons: list[Daemon] = []
    try:
        sh("ip", "-n", netns, "link", "set", "lo", "up")
        daemons.append(_start(netns, base, "a", 16509))
        daemons.append(_start(netns, base, "b", 16510))
        yield daemons[0], daemons[1], netns
    finally:
        for d in daemons:
            _kill_guests(d)
            d.proc.terminate()
            try:
                d.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()
        with suppress(RuntimeError):
            sh("ip", "netns", "del", netns)
        shutil.rmtree(base, ignore_errors=True)
