"""Two hypervisor hosts and a prober in namespaces, for real QEMU and live migration.

Each host is a network namespace with a Linux bridge (its virtual switch); the two
bridges are joined by a veth pair, as two hosts under one ToR are. A prober
namespace hangs off the first host's bridge with ``10.254.255.254/16`` — the
tiny guest's own subnet — and pings a guest at a fixed interval while it moves.
Everything is named with a random prefix and deleted on exit; no packet leaves.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.guest import Guest

if TYPE_CHECKING:
    from fuyun.drivers.compute.qemu import QemuConfig


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def can_run_qemu() -> str | None:
    """Why the real-QEMU tests cannot run here, or None when they can."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (Debian qemu-system-x86)"
    if shutil.which("ip") is None:
        return "iproute2 is missing"
    try:
        name = f"fyqp{uuid.uuid4().hex[:6]}"
        sh("ip", "netns", "add", name)
        sh("ip", "netns", "del", name)
    except RuntimeError as exc:
        return f"cannot create network namespaces: {exc}"
    return None


@dataclass
class Lab:
    tag: str
    hosts: dict[str, str]  # fuyun host name -> namespace
    prober: str
    run_dir: Path

    def config(self, state_dir: Path, guest: Guest | None, **kw: object) -> QemuConfig:
        from fuyun.drivers.compute.qemu import HostConfig, QemuConfig

        return QemuConfig(
            state_dir=state_dir,
            run_dir=self.run_dir,
            kernel=guest.kernel if guest else None,
            initrd=guest.initrd if guest else None,
            append=guest.append if guest else "",
            hosts={h: HostConfig(netns=ns, plug="bridge:br0") for h, ns in self.hosts.items()},
            **kw,  # type: ignore[arg-type]
        )

    def ping(self, ip: str, count: int = 1, timeout_s: int = 1) -> bool:
        done = subprocess.run(
            ["ip", "netns", "exec", self.prober, "ping", "-c", str(count), "-W",
             str(timeout_s), "-q", ip],
            capture_output=True, check=False,
        )  # fmt: skip
        return done.returncode == 0


@contextmanager
def lab(host_names: tuple[str, ...] = ("qh1", "qh2")) -> Iterator[Lab]:
    tag = uuid.uuid4().hex[:5]
    made: list[str] = []
    run_dir = Path(tempfile.mkdtemp(prefix=f"fyq{tag}", dir="/tmp"))
    try:
        hosts = {}
        for i, host in enumerate(host_names):
            ns = f"fyq{tag}-h{i}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", ns, "link", "set", "br0", "type", "bridge", "ageing_time", "30000")
            sh("ip", "-n", ns, "link", "set", "br0", "up")
            hosts[host] = ns
        namespaces = list(hosts.values())
        for i, ns in enumerate(namespaces[1:], start=1):  # chain the host bridges
            sh("ip", "link", "add", f"fyq{tag}u{i}a", "netns", namespaces[0], "type", "veth",
               "peer", "name", f"fyq{tag}u{i}b", "netns", ns)  # fmt: skip
            for side, where in (("a", namespaces[0]), ("b", ns)):
                dev = f"fyq{tag}u{i}{side}"
                sh("ip", "-n", where, "link", "set", dev, "master", "br0", "up")
        prober = f"fyq{tag}-pr"
        sh("ip", "netns", "add", prober)
        made.append(prober)
        sh("ip", "link", "add", "eth0", "netns", prober, "type", "veth", "peer", "name",
           f"fyq{tag}p", "netns", namespaces[0])  # fmt: skip
        sh("ip", "-n", namespaces[0], "link", "set", f"fyq{tag}p", "master", "br0", "up")
        sh("ip", "-n", prober, "link", "set", "lo", "up")
        sh("ip", "-n", prober, "addr", "add", "10.254.255.254/16", "dev", "eth0")
        sh("ip", "-n", prober, "link", "set", "eth0", "up")
        yield Lab(tag, hosts, prober, run_dir)
    finally:
        for ns in made:
            with suppress(RuntimeError):
                sh("ip", "netns", "del", ns)
        shutil.rmtree(run_dir, ignore_errors=True)


@dataclass(frozen=True)
class ProbeResult:
    sent: int
    received: int
    interval_ms: float
    longest_gap_ms: float
    # Answers' times (``ping -D``: the epoch clock), to place gaps against other events.
    stamps: tuple[float, ...] = ()

    @property
    def lost(self) -> int:
        return self.sent - self.received


class Prober:
    """``ping -i`` from the prober namespace (the lab's, or any namespace named), started
    before and stopped after a move."""

    def __init__(self, lab: Lab | str, ip: str, interval_ms: int = 10) -> None:
        self.interval_ms = interval_ms
        netns = lab if isinstance(lab, str) else lab.prober
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "ping", "-D", "-n", "-W", "1",
             "-i", f"{interval_ms / 1000:.3f}", ip],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def stop(self) -> ProbeResult:
        self._proc.send_signal(2)  # SIGINT: ping prints its summary
        out, _ = self._proc.communicate(timeout=10)
        stamps = [float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
        summary = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        if summary is None:
            raise RuntimeError(f"ping printed no summary: {out[-300:]}")
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        return ProbeResult(
            sent=int(summary.group(1)),
            received=int(summary.group(2)),
            interval_ms=self.interval_ms,
            longest_gap_ms=max(gaps, default=0.0) * 1000,
            stamps=tuple(stamps),
        )
