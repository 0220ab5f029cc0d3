"""One network's DHCP and DNS served by ``dnsmasq``, on the host that carries its gateway.

:class:`DnsmasqServer` keeps one foreground dnsmasq process per network (owned by
the caller, with a pidfile in its work directory), optionally inside a network
namespace. :meth:`apply` is idempotent and level-based: the main configuration is
rewritten (and dnsmasq restarted) only when the subnets, zone or interface change;
a change of reservations rewrites the hosts files and sends SIGHUP, which makes
dnsmasq re-read them without dropping a lease.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from fuyun.domain.errors import DriverError
from fuyun.netsvc import dnsmasq
from fuyun.netsvc.scope import DhcpScope


def available() -> str | None:
    """Why dnsmasq cannot run here, or None."""
    return (
        None
        if shutil.which("dnsmasq")
        else "dnsmasq is not installed (apt-get install dnsmasq-base)"
    )


class DnsmasqServer:
    def __init__(self, workdir: Path, interface: str, *, netns: str | None = None) -> None:
        self.workdir, self.interface, self.netns = workdir, interface, netns
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "dnsmasq.conf"
        self.hosts = workdir / "hosts"
        self.leases = workdir / "leases"
        self.pidfile = workdir / "dnsmasq.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- desired state ---------------------------------------------------------------

    def apply(self, scope: DhcpScope) -> None:
        if not scope.enabled:
            self.stop()
            return
        conf = dnsmasq.config(
            scope, interface=self.interface, hosts_file=str(self.hosts), lease_file=str(self.leases)
        )
        hosts, names = dnsmasq.hosts(scope), dnsmasq.dns_hosts(scope)
        conf_changed = _write_if_changed(self.conf, conf)
        hosts_changed = _write_if_changed(self.hosts, hosts)
        hosts_changed |= _write_if_changed(Path(f"{self.hosts}.dns"), names)
        if conf_changed or not self.running():
            self._restart()
        elif hosts_changed:
            self.reload()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def reload(self) -> None:
        """Re-read reservations and names; leases survive."""
        if self._proc is None:
            raise DriverError("dnsmasq is not running")
        self._proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None
        self.pidfile.unlink(missing_ok=True)

    # -- process ---------------------------------------------------------------------

    def _restart(self) -> None:
        self.stop()
        kill_pidfile(self.pidfile)  # one left by an earlier owner (an agent restarted)
        argv = [
            "dnsmasq",
            "--keep-in-foreground",
            f"--conf-file={self.conf}",
            f"--pid-file={self.pidfile}",
            "--user=root",
            "--log-facility=-",
        ]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        log = open(self.workdir / "dnsmasq.log", "ab")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = (self.workdir / "dnsmasq.log").read_text()[-500:]
                raise DriverError(f"dnsmasq exited with {self._proc.returncode}: {tail}")
            if self.pidfile.exists() and self.pidfile.read_text().strip():
                return
            time.sleep(0.02)
        raise DriverError("dnsmasq did not start within 5 s")


def kill_pidfile(pidfile: Path, timeout_s: float = 5.0) -> bool:
    """Terminate the dnsmasq a pidfile names (only if it is one) and remove the file;
    True if a process was stopped. How ``lab down`` and a restarted owner clean up."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        pidfile.unlink(missing_ok=True)
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        cmdline = b""
    stopped = False
    if b"dnsmasq" in cmdline:
        try:
            os.kill(pid, signal.SIGTERM)
            stopped = True
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while stopped and time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError, IndexError):
                break
            if state == "Z":
                break  # gone, waiting for its parent to reap it
            time.sleep(0.02)
    pidfile.unlink(missing_ok=True)
    return stopped


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True
