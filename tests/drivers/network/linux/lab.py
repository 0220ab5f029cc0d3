"""Namespaces for the linux driver's tests: a host namespace and VM namespaces joined to it.

Every name starts with ``fylx`` plus a random tag, so tests of other checkouts on
the same machine never collide; :meth:`LinuxLab.close` deletes every namespace
and process the lab made (deleting a namespace deletes its links).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from fuyun.drivers.network.linux.bridges import peer_name, port_device
from tests.policy.tools import run, tool
from tests.support.capabilities import missing


def need_tools() -> None:
    """Skip (or fail under FUYUN_REQUIRE_ALL=1) without root, iproute2 or nftables."""
    tool("iproute2", "ip", root=True)
    tool("iproute2", "tc", root=True)
    tool("nftables", "nft", root=True)
    if not os.path.exists("/proc/sys/net/bridge"):
        missing("br_netfilter", "/proc/sys/net/bridge is absent (no br_netfilter)")


def sh(*args: str, ns: str | None = None, stdin: str | None = None) -> str:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    result = run(cmd, stdin)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")
    return result.stdout


class LinuxLab:
    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.host = f"fylx{self.tag}h"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []
        self._netns(self.host)

    def _netns(self, name: str) -> str:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def port(self, port_id: str) -> str:
        """A started VM's interface on the host (a veth pair); returns the host end."""
        dev = port_device(port_id)
        sh("ip", "link", "add", dev, "type", "veth", "peer", "name", peer_name(dev), ns=self.host)
        return dev

    def vm(self, port_id: str, mac: str, ips: list[str]) -> str:
        """A VM namespace whose ``eth0`` is the port: MAC and addresses set, routes on-link."""
        dev = self.port(port_id)
        ns = self._netns(f"fylx{self.tag}v{len(self.namespaces)}")
        sh("ip", "link", "set", peer_name(dev), "netns", ns, ns=self.host)
        sh("ip", "link", "set", peer_name(dev), "name", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "address", mac, "up", ns=ns)
        for key in ("accept_dad", "autoconf"):
            sh("sysctl", "-qw", f"net.ipv6.conf.eth0.{key}=0", ns=ns)
        for ip in ips:
            plen = 128 if ":" in ip else 32
            extra = ["nodad"] if ":" in ip else []
            sh("ip", "addr", "add", f"{ip}/{plen}", "dev", "eth0", *extra, ns=ns)
        sh("ip", "route", "add", "default", "dev", "eth0", ns=ns)
        if any(":" in ip for ip in ips):
            sh("ip", "-6", "route", "add", "default", "dev", "eth0", ns=ns)
        return ns

    def spawn(self, ns: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for ns in reversed(self.namespaces):
            with suppress(RuntimeError):
                sh("ip", "netns", "delete", ns)


@contextmanager
def linux_lab() -> Iterator[LinuxLab]:
    need_tools()
    lab = LinuxLab()
    try:
        yield lab
    finally:
        lab.close()
