"""A private Open vSwitch: its own database and switch daemon in a directory we own.

The lab (and tests) must not depend on, or disturb, a system-wide OVS. Both
daemons run in the foreground as children of the caller, with pidfiles and
control sockets in ``root``; ``ovs-vswitchd`` runs inside the network namespace
``netns`` so the taps of the userspace (netdev) datapath and every port it opens
live there and vanish with it. Started processes are reaped on :meth:`stop`;
a daemon left by a crashed run is found again by its pidfile.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fuyun.domain.errors import DriverError

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
BINARIES = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")


def ovs_env(root: Path) -> dict[str, str]:
    """The environment every OVS tool needs to find this instance and nothing else."""
    return {
        **os.environ,
        "OVS_RUNDIR": str(root),
        "OVS_LOGDIR": str(root),
        "OVS_DBDIR": str(root),
        "OVS_SYSCONFDIR": str(root),
    }


@dataclass
class OvsDaemons:
    root: Path
    netns: str | None = None

    @property
    def db_socket(self) -> Path:
        return self.root / "db.sock"

    @property
    def db(self) -> str:
        return f"unix:{self.db_socket}"

    def pidfile(self, name: str) -> Path:
        return self.root / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The daemon's pid if its pidfile names a live process."""
        try:
            pid = int(self.pidfile(name).read_text().strip())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def running(self) -> bool:
        return all(self.pid(n) is not None for n in ("ovsdb-server", "ovs-vswitchd"))

    def start(self, timeout_s: float = 15.0) -> None:
        """Create the database if needed and start both daemons; wait until they answer."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = ovs_env(self.root)
        conf = self.root / "conf.db"
        if not conf.exists():
            _check(["ovsdb-tool", "create", str(conf), str(SCHEMA)], env)
        if self.pid("ovsdb-server") is None:
            self._spawn(
                "ovsdb-server",
                [
                    "ovsdb-server",
                    f"--remote=punix:{self.db_socket}",
                    f"--pidfile={self.pidfile('ovsdb-server')}",
                    f"--log-file={self.root / 'ovsdb-server.log'}",
                    str(conf),
                ],
                env,
            )
            _wait(lambda: self.db_socket.exists(), timeout_s, "ovsdb-server socket")
            _check(["ovs-vsctl", f"--db={self.db}", "--no-wait", "init"], env)
        if self.pid("ovs-vswitchd") is None:
            cmd = [
                "ovs-vswitchd",
                self.db,
                f"--pidfile={self.pidfile('ovs-vswitchd')}",
                f"--log-file={self.root / 'ovs-vswitchd.log'}",
            ]
            if self.netns:
                cmd = ["ip", "netns", "exec", self.netns, *cmd]
            self._spawn("ovs-vswitchd", cmd, env)
            _wait(lambda: self.pid("ovs-vswitchd") is not None, timeout_s, "ovs-vswitchd")
            _wait(lambda: any(self.root.glob("ovs-vswitchd.*.ctl")), timeout_s, "vswitchd ctl")

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        log = (self.root / f"{name}.out").open("ab")
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        time.sleep(0.05)
        if proc.poll() is not None:
            out = (self.root / f"{name}.out").read_text(errors="replace")[-500:]
            raise DriverError(f"{name} exited at start: {out}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate both daemons (switch first) and wait until they are gone."""
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pid = self.pid(name)
            if pid is None:
                continue
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and _alive(pid):
                _reap(pid)
                time.sleep(0.05)
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
                _reap(pid)
            self.pidfile(name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0); its state says it is gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _check(cmd: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DriverError(f"{' '.join(cmd[:2])}: {result.stderr.strip()}")
    return result.stdout


def _wait(ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise DriverError(f"timed out waiting for {what}")
