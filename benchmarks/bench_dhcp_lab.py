"""DHCP in the lab: from a VM's creation through the API to its lease, via the agent.

Claim (issue 13): in the lab, a new VM's reservation reaches its network's dnsmasq
within an agent pass, and the VM gets exactly its IPAM address. Measured, ``--vms``
times (200), one VM at a time on a four-host lab (private Open vSwitch) with an
``AgentLoop`` running the host documents and the network node every
``--interval`` seconds:

1. ``POST /vms`` returns (IPAM, placement, host port map, network generation);
2. the network node has the network's new generation in force (its dnsmasq hosts
   file rewritten and SIGHUP sent) — "reservation available";
3. busybox ``udhcpc`` in the VM's namespace (made by the host agent) is bound to the
   VM's IPAM address — "lease".

Baseline in the same run: the direct path of ``bench_dhcp.py`` (scope read and
applied by the caller right after the port is created, no agent), so the ratio is
the cost of going through desired state and an agent pass. Needs root, Open vSwitch,
iproute2, dnsmasq-base and busybox-static.

    .venv/bin/python benchmarks/bench_dhcp_lab.py --vms 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.support.labworld import lab_world  # noqa: E402

from fuyun.agent import AgentLoop  # noqa: E402

SCRIPT = '#!/bin/sh\ncase "$1" in bound) echo "$ip" > "$LEASE_OUT";; esac\nexit 0\n'


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def lab_path(args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"create": [], "reservation": [], "lease": [], "total": []}
    script = work / "udhcpc.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    (work / "world").mkdir()
    with lab_world(work / "world") as world:
        tenant = world.tenant("bench", "10.60.0.0/22")
        net = world.call("GET", f"/networks?tenant_id={tenant}&name_prefix=net")["items"][0]
        record = world.lab.root / "netsvc" / net["id"] / "service.json"
        loop = AgentLoop(world.agent, world.hosts, args.interval, services=world.services)
        loop.start()
        try:
            for i in range(args.vms):
                host = world.hosts[i % len(world.hosts)]
                t0 = time.perf_counter()
                vm = world.vm(tenant, f"v{i}", host)
                t1 = time.perf_counter()
                want = world.call("GET", f"/networks/{net['id']}")["generation"]
                while not (
                    record.exists() and json.loads(record.read_text())["generation"] >= want
                ):
                    time.sleep(0.002)
                t2 = time.perf_counter()
                out = work / "lease"
                out.unlink(missing_ok=True)
                ns = world.ns(vm)
                while subprocess.run(
                    ["ip", "netns", "exec", ns, "true"], capture_output=True
                ).returncode:
                    time.sleep(0.005)  # the host agent has not made the VM yet
                subprocess.run(
                    ["ip", "netns", "exec", ns, "sh", "-c",
                     f"ip addr flush dev eth0 2>/dev/null; LEASE_OUT={out} busybox udhcpc"
                     f" -i eth0 -n -q -f -t 30 -T 1 -A 1 -s {script}"],
                    check=True, capture_output=True, timeout=60,
                )  # fmt: skip
                t3 = time.perf_counter()
                got = out.read_text().strip()
                if got != vm.ip:
                    raise SystemExit(f"got {got}, IPAM allocated {vm.ip}")
                for key, value in (
                    ("create", t1 - t0),
                    ("reservation", t2 - t1),
                    ("lease", t3 - t2),
                    ("total", t3 - t0),
                ):
                    times[key].append(value * 1000)
        finally:
            loop.stop()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--vms", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.05, help="agent pass interval (s)")
    args = ap.parse_args()
    sys.argv = [sys.argv[0], "--ports", str(args.vms)]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_dhcp  # the direct path, as the baseline

    with tempfile.TemporaryDirectory(prefix="fuyun-bench-dhcp-lab-") as tmp:
        lab = lab_path(args, Path(tmp))
        direct = bench_dhcp.run("direct", argparse.Namespace(ports=args.vms), Path(tmp), False)
    print(f"\nDHCP in the lab, {args.vms} VMs, agent interval {args.interval} s (ms)\n")
    print("| step | lab via agent p50 / p99 / max | direct p50 / p99 / max | p50 ratio |")
    print("|---|--:|--:|--:|")
    pairs = (("create", "create"), ("reservation", "apply"), ("lease", "lease"), ("total", "total"))
    for ours, theirs in pairs:
        a, b = lab[ours], direct[theirs]
        print(
            f"| {ours} | {pct(a, 0.5):.1f} / {pct(a, 0.99):.1f} / {max(a):.1f} "
            f"| {pct(b, 0.5):.1f} / {pct(b, 0.99):.1f} / {max(b):.1f} "
            f"| {pct(a, 0.5) / max(pct(b, 0.5), 1e-9):.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
