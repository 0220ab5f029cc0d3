"""A Linux-bridge hypervisor in namespaces, for proving the nftables ruleset with packets.

One namespace plays the host: a bridge, ``br_netfilter`` switched on, fuyun's table
loaded. Each VM (and one "outside" machine) is a namespace joined to the bridge
by a veth pair whose host end carries the port's interface name and whose VM end
carries the port's MAC. Every route is on-link, so all traffic crosses the
bridge. Nothing leaves the namespaces this lab made; all are deleted at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.policy.tools import run, tool

# Accepts on every port it is given and answers with one byte; a connect() that
# succeeds proves the SYN passed and the SYN-ACK came back.
SERVER = """
import socket, sys, threading
def serve(port):
    for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port)); s.listen(16)
        threading.Thread(target=lambda s=s: [c.close() for c in iter(lambda: s.accept()[0], None)],
                         daemon=True).start()
for p in sys.argv[1:]:
    serve(int(p))
print("ready", flush=True)
threading.Event().wait()
"""

CONNECT = """
import socket, sys
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(1.0)
s.bind((src, 0))
try:
    s.connect((dst, port))
except OSError:
    sys.exit(1)
"""


class BridgeLab:
    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.host = f"fyh{self.tag}"
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen[str]] = []

    def sh(self, *args: str, ns: str | None = None, stdin: str | None = None) -> str:
        cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
        result = run(cmd, stdin)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")
        return result.stdout

    def _netns(self, name: str) -> str:
        self.sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def start(self) -> None:
        self._netns(self.host)
        self.sh("ip", "link", "add", "br0", "type", "bridge", ns=self.host)
        self.sh("ip", "link", "set", "br0", "up", ns=self.host)
        for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
            self.sh("sysctl", "-qw", f"net.bridge.{key}=1", ns=self.host)

    def machine(self, port: str, mac: str, ips: list[str]) -> str:
        """A VM (or outside machine) behind host interface ``port``; returns its namespace."""
        ns = self._netns(f"fyv{self.tag}{len(self.namespaces)}")
        self.sh(
            "ip",
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
            ns=self.host,
        )
        self.sh("ip", "link", "set", port, "master", "br0", "up", ns=self.host)
        self.sh("ip", "link", "set", "eth0", "address", mac, "up", ns=ns)
        for key in ("accept_dad", "autoconf"):
            self.sh("sysctl", "-qw", f"net.ipv6.conf.eth0.{key}=0", ns=ns)
        for ip in ips:
            if ":" in ip:
                self.sh("ip", "addr", "add", f"{ip}/128", "dev", "eth0", "nodad", ns=ns)
            else:
                self.sh("ip", "addr", "add", f"{ip}/32", "dev", "eth0", ns=ns)
        self.sh("ip", "route", "add", "default", "dev", "eth0", ns=ns)
        self.sh("ip", "-6", "route", "add", "default", "dev", "eth0", ns=ns)
        return ns

    def serve(self, ns: str, ports: list[int]) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, *map(str, ports)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.servers.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def connects(self, ns: str, src: str, dst: str, port: int) -> bool:
        return (
            run(
                ["ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, src, dst, str(port)]
            ).returncode
            == 0
        )

    def load(self, ruleset: str) -> None:
        self.sh("nft", "-f", "-", ns=self.host, stdin=ruleset)

    def stop(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        for ns in reversed(self.namespaces):
            with suppress(RuntimeError):
                self.sh("ip", "netns", "delete", ns)


@contextmanager
def bridge_lab() -> Iterator[BridgeLab]:
    for binary in ("ip", "nft", "sysctl"):
        tool("nftables" if binary == "nft" else "iproute2", binary, root=True)
    if not os.path.exists("/proc/sys/net/bridge"):
        from tests.support.capabilities import missing

        missing("br_netfilter", "/proc/sys/net/bridge is absent (no br_netfilter)")
    lab = BridgeLab()
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
