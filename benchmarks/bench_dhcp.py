"""DHCP reservation latency: from a port's creation to its lease being available.

Claim (issue 13): a new port's reservation reaches the network's DHCP server quickly,
without dropping anyone's lease. Measured, ``--ports`` times (200):

1. ``ports.create_port`` through the service layer on a SQLite store (``small`` fabric):
   MAC, next-free address, quota, audit, one transaction;
2. the network's scope read back (``netservices.dhcp_scope``) and applied to the
   network's dnsmasq (``DnsmasqServer.apply``: hosts files rewritten, SIGHUP);
3. a DHCP client (busybox ``udhcpc``) in a namespace with the port's MAC asks until it
   is bound to the port's address.

Baseline in the same run: the same steps, but the server is restarted with the new
configuration on every change (what an agent without reload would do), so the lease
file survives but the server is down while it restarts. Printed: p50/p99/max of each
step and of the total, ours against the baseline. Needs root, iproute2, dnsmasq-base
and busybox-static.

    .venv/bin/python benchmarks/bench_dhcp.py --ports 200
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuyun.config import Settings  # noqa: E402
from fuyun.drivers.compute.fake import FakeComputeDriver  # noqa: E402
from fuyun.drivers.network.dnsmasq import DnsmasqServer  # noqa: E402
from fuyun.services import netservices, networks, ports, tenants  # noqa: E402
from fuyun.services.bootstrap import bootstrap  # noqa: E402
from fuyun.services.principal import SYSTEM  # noqa: E402
from fuyun.store.engine import Database  # noqa: E402

SCRIPT = '#!/bin/sh\n[ "$1" = bound ] && echo "$ip" > "$LEASE_OUT"\nexit 0\n'


def sh(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def run(label: str, args: argparse.Namespace, work: Path, restart: bool) -> dict[str, list[float]]:
    db = Database(f"sqlite:///{work / (label + '.db')}")
    settings = Settings(database_url=db.url)
    bootstrap(db, settings, FakeComputeDriver(), fabric="small")
    tenant = tenants.create_tenant(db, SYSTEM, name="bench", limits={"ips": 100_000, "vms": 10_000})
    ctx = networks.Networking(db=db, settings=settings)
    net = networks.create_network(
        ctx, SYSTEM, networks.NetworkRequest(name="n", cidr="10.9.0.0/22", tenant_id=tenant.id)
    )
    tag = uuid.uuid4().hex[:5]
    server_ns, client_ns = f"fybd{tag}s", f"fybd{tag}c"
    script = work / f"{label}.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    out = work / f"{label}.lease"
    server = DnsmasqServer(work / label, "br0", netns=server_ns)
    times: dict[str, list[float]] = {"create": [], "apply": [], "lease": [], "total": []}
    try:
        for ns in (server_ns, client_ns):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=server_ns)
        sh("ip", "addr", "add", "10.9.0.1/22", "dev", "br0", ns=server_ns)
        sh("ip", "link", "set", "br0", "up", ns=server_ns)
        sh("ip", "link", "add", "c0", "type", "veth", "peer", "name", "eth0", "netns", client_ns)
        sh("ip", "link", "set", "c0", "netns", server_ns)
        sh("ip", "link", "set", "c0", "master", "br0", "up", ns=server_ns)
        server.apply(netservices.dhcp_scope(db, settings, SYSTEM, net.id).scope)
        for _ in range(args.ports):
            t0 = time.perf_counter()
            port = ports.create_port(ctx, SYSTEM, ports.PortRequest(network_id=net.id))
            t1 = time.perf_counter()
            scope = netservices.dhcp_scope(db, settings, SYSTEM, net.id).scope
            if restart:
                server.stop()
            server.apply(scope)
            t2 = time.perf_counter()
            sh("ip", "link", "set", "eth0", "down", ns=client_ns)
            sh("ip", "link", "set", "eth0", "address", port.mac, "up", ns=client_ns)
            out.unlink(missing_ok=True)
            subprocess.run(
                ["ip", "netns", "exec", client_ns, "env", f"LEASE_OUT={out}", "busybox",
                 "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "30", "-T", "1", "-A", "1",
                 "-s", str(script)],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            t3 = time.perf_counter()
            got = out.read_text().strip()
            if got != port.ips[0]:
                raise SystemExit(f"{label}: got {got}, IPAM allocated {port.ips[0]}")
            for key, value in (
                ("create", t1 - t0),
                ("apply", t2 - t1),
                ("lease", t3 - t2),
                ("total", t3 - t0),
            ):
                times[key].append(value * 1000)
    finally:
        server.stop()
        for ns in (server_ns, client_ns):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        db.dispose()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ports", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fuyun-bench-dhcp-") as tmp:
        ours = run("reload", args, Path(tmp), restart=False)
        base = run("restart", args, Path(tmp), restart=True)
    print(f"\nDHCP reservation latency, {args.ports} ports each (ms)\n")
    print(
        "| step | SIGHUP reload p50 / p99 / max | restart per change p50 / p99 / max | p50 ratio |"
    )
    print("|---|--:|--:|--:|")
    for key in ("create", "apply", "lease", "total"):
        a, b = ours[key], base[key]
        print(
            f"| {key} | {pct(a, 0.5):.1f} / {pct(a, 0.99):.1f} / {max(a):.1f} "
            f"| {pct(b, 0.5):.1f} / {pct(b, 0.99):.1f} / {max(b):.1f} "
            f"| {statistics.median(b) / max(statistics.median(a), 1e-9):.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
