"""A private Open vSwitch for tests: its own run directory, its own network namespace.

``ovs-vswitchd`` runs under ``unshare --net``, so the tap devices the userspace
(netdev) datapath creates live and die with it and never touch the host. Flows
are judged with ``ofproto/trace`` — the switch's own classifier, conjunctions and
conntrack recirculation included — so no packet has to be sent.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.policy.tools import run, tool

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


class OvsLab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "OVS_RUNDIR": str(root),
            "OVS_LOGDIR": str(root),
            "OVS_DBDIR": str(root),
            "OVS_SYSCONFDIR": str(root),
        }
        self.db = f"unix:{root / 'db.sock'}"

    def _run(self, *args: str) -> str:
        result = run(list(args), env=self.env)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        self._run("ovsdb-tool", "create", str(self.root / "conf.db"), str(SCHEMA))
        self._run(
            "ovsdb-server",
            f"--remote=punix:{self.root / 'db.sock'}",
            "--detach",
            f"--pidfile={self.root / 'ovsdb-server.pid'}",
            f"--log-file={self.root / 'ovsdb-server.log'}",
            str(self.root / "conf.db"),
        )
        self._run("ovs-vsctl", f"--db={self.db}", "--no-wait", "init")
        self._run(
            "unshare",
            "--net",
            "ovs-vswitchd",
            self.db,
            "--detach",
            f"--pidfile={self.root / 'ovs-vswitchd.pid'}",
            f"--log-file={self.root / 'ovs-vswitchd.log'}",
        )

    def stop(self) -> None:
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pidfile = self.root / f"{name}.pid"
            with suppress(FileNotFoundError, ProcessLookupError, ValueError):
                pid = int(pidfile.read_text())
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    os.kill(pid, 0)  # raises once the daemon is gone
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)

    def add_bridge(self, name: str) -> None:
        self._run(
            "ovs-vsctl",
            f"--db={self.db}",
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        )

    def replace_flows(self, bridge: str, flows: str) -> None:
        path = self.root / f"{bridge}.flows"
        path.write_text(flows)
        # Plain OpenFlow 1.0 cannot carry conj_id or ct_state: ask for 1.3 (OXM).
        self._run("ovs-ofctl", "-O", "OpenFlow13", "replace-flows", bridge, str(path))

    def dump_flows(self, bridge: str) -> list[str]:
        return [
            line
            for line in self._run("ovs-ofctl", "dump-flows", bridge).splitlines()
            if "cookie=" in line
        ]

    def trace(self, bridge: str, flow: str, ct_state: str | None = None) -> str:
        args = ["ovs-appctl", "ofproto/trace", bridge, flow]
        if ct_state:
            args += ["--ct-next", ct_state]
        return self._run(*args)


@contextmanager
def ovs_lab(root: Path) -> Iterator[OvsLab]:
    for binary in (
        "ovsdb-tool",
        "ovsdb-server",
        "ovs-vswitchd",
        "ovs-vsctl",
        "ovs-ofctl",
        "ovs-appctl",
        "unshare",
    ):
        tool("openvswitch-switch", binary, root=True)
    lab = OvsLab(root)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
