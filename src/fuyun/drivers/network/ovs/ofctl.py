"""OpenFlow through ``ovs-ofctl``: atomic per-cookie replace and a semantic diff.

``ovs-ofctl diff-flows`` parses both sides, so a flow written one way and dumped
another (``tcp_dst`` vs ``tp_dst``, decimal vs hex) compares equal; comparing
before writing is what makes a re-apply change nothing on the switch.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from fuyun.domain.errors import DriverError
from fuyun.drivers.network.ovs.flows import bundle

OPENFLOW = "OpenFlow13"  # conj_id and ct_state need OXM


class Ofctl:
    def __init__(self, rundir: Path) -> None:
        self.rundir = rundir

    def target(self, bridge: str) -> str:
        return f"unix:{self.rundir / bridge}.mgmt"

    def _run(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["ovs-ofctl", "-O", OPENFLOW, *args], capture_output=True, text=True, check=False
        )
        if result.returncode not in ok:
            raise DriverError(f"ovs-ofctl {args[0]}: {result.stderr.strip()[:400]}")
        return result

    def wait_ready(self, bridge: str, timeout_s: float = 10.0) -> None:
        """Wait for a new bridge's OpenFlow socket (the switch makes it asynchronously)."""
        path = self.rundir / f"{bridge}.mgmt"
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if time.monotonic() > deadline:
                raise DriverError(f"ovs: bridge {bridge} has no OpenFlow socket")
            time.sleep(0.02)

    def dump(self, bridge: str, cookie: str | None = None) -> list[str]:
        args = ["--no-stats", "dump-flows", self.target(bridge)]
        if cookie:
            args.append(f"cookie={cookie}/-1")
        return [line.strip() for line in self._run(*args).stdout.splitlines() if "actions=" in line]

    def diff(self, bridge: str, cookie: str, flows: list[str]) -> list[str]:
        """``-flow`` lines the switch has and should not, ``+flow`` lines it lacks."""
        with tempfile.TemporaryDirectory(prefix="fuyun-of-") as tmp:
            have, want = Path(tmp, "have"), Path(tmp, "want")
            have.write_text("\n".join(self.dump(bridge, cookie)) + "\n")
            want.write_text("\n".join(flows) + "\n")
            result = self._run("diff-flows", str(have), str(want), ok=(0, 2))
        return [line for line in result.stdout.splitlines() if line[:1] in "+-"]

    def replace(self, bridge: str, cookie: str, flows: list[str], *, compare: bool = True) -> bool:
        """Make ``cookie``'s flows exactly ``flows`` in one bundle; False if they already were.

        ``compare=False`` skips reading the switch first, for content known to be new.
        """
        if compare and not self.diff(bridge, cookie, flows):
            return False
        with tempfile.NamedTemporaryFile("w", prefix="fuyun-of-", suffix=".flows") as f:
            f.write(bundle(cookie, flows))
            f.flush()
            self._run("--bundle", "add-flows", self.target(bridge), f.name)
        return True

    def add(self, bridge: str, flow: str) -> None:
        self._run("add-flow", self.target(bridge), flow)

    def delete(self, bridge: str, match: str) -> None:
        self._run("del-flows", self.target(bridge), match)
