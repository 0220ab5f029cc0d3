"""DHCP in the lab: from a VM's creation through the API to its lease, via the agent.

Claim (issue 13): in the lab, a new VM's reservation reaches its network's dnsmasq
within an agent pass, and the VM gets exactly its IPAM address. Measured, ``--vms``
times (200), one VM at a time (each deleted after its lease) on a four-host lab
(private Open vSwitch) with an ``AgentLoop`` running the host documents and the network
node every ``--interval`` seconds:

1. ``POST /vms`` returns (IPAM, placement, host port map, network generation);
2. the network node has the network's new generation in force (its dnsmasq hosts
   file rewritten and SIGHUP sent) — "reservation available";
   the host agent has the host's new port map in force (the VM's namespace, port and
   flows) — "plugged", counted from the call;
3. from when both are ready, busybox ``udhcpc`` in the VM's namespace is bound to
   the VM's IPAM address — "lease".

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

from sqlalchemy import select  # noqa: E402
from tests.support.labworld import LabWorld, lab_world  # noqa: E402

from fuyun.agent import AgentLoop  # noqa: E402
from fuyun.store.models import DeviceState  # noqa: E402

SCRIPT = '#!/bin/sh\ncase "$1" in bound) echo "$ip" > "$LEASE_OUT";; esac\nexit 0\n'


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def served(record: Path) -> int:
    """The generation the network node has in force, from its record (-1 if none)."""
    try:
        return int(json.loads(record.read_text())["generation"])
    except FileNotFoundError:
        return -1


def plugged(world: LabWorld, host: str) -> bool:
    """The host agent has the host's current port map in force (VM port and flows)."""
    with world.db.read_session() as s:
        row = s.scalar(
            select(DeviceState).where(
                DeviceState.device_type == "host",
                DeviceState.device_name == host,
                DeviceState.enforcement_point == "ports",
            )
        )
        return row is not None and row.applied_generation >= row.desired_generation


def lab_path(args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {
        "create": [],
        "reservation": [],
        "plugged": [],
        "lease": [],
        "total": [],
    }
    script = work / "udhcpc.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    (work / "world").mkdir()
    with lab_world(work / "world") as world:
        quotas = {"vms": 10_000, "vcpus": 100_000, "ram_mb": 10**8, "ips": 100_000}
        tenant = world.call(
            "POST",
            "/tenants",
            json={"name": "bench", "quotas": {**quotas, "bandwidth_mbps": 10**7}},
        )["id"]
        world.call(
            "POST",
            "/networks",
            json={"name": "net", "cidr": "10.60.0.0/22", "site": "sz1", "tenant_id": tenant},
        )
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
                t_reserved = t_plugged = 0.0
                while not (t_reserved and t_plugged):  # whichever comes first, timed apiece
                    if not t_reserved and served(record) >= want:
                        t_reserved = time.perf_counter()
                    if not t_plugged and plugged(world, host):
                        t_plugged = time.perf_counter()
                    time.sleep(0.002)
                t2 = max(t_reserved, t_plugged)  # the lease step starts when both are ready
                out = work / "lease"
                out.unlink(missing_ok=True)
                ns = world.ns(vm)
                subprocess.run(
                    ["ip", "netns", "exec", ns, "sh", "-c",
                     f"ip addr flush dev eth0 2>/dev/null; LEASE_OUT={out} busybox udhcpc"
                     f" -i eth0 -n -q -f -t 30 -T 1 -A 1 -s {script}"],
                    check=True, capture_output=True, timeout=60,
                )  # fmt: skip
                t3 = time.perf_counter()
                times["plugged"].append((t_plugged - t0) * 1000)
                got = out.read_text().strip()
                if got != vm.ip:
                    raise SystemExit(f"got {got}, IPAM allocated {vm.ip}")
                world.call("DELETE", f"/vms/{vm.id}")  # the lab holds 4 x 32 VMs
                while not subprocess.run(
                    ["ip", "netns", "exec", ns, "true"], capture_output=True
                ).returncode:
                    time.sleep(0.005)
                for key, value in (
                    ("create", t1 - t0),
                    ("reservation", t_reserved - t1),
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
    pairs = (
        ("create", "create"),
        ("reservation", "apply"),
        ("plugged", None),
        ("lease", "lease"),
        ("total", "total"),
    )
    for ours, theirs in pairs:
        a = lab[ours]
        if theirs is None:  # no VM to plug on the direct path
            print(f"| {ours} | {pct(a, 0.5):.1f} / {pct(a, 0.99):.1f} / {max(a):.1f} | - | - |")
            continue
        b = direct[theirs]
        print(
            f"| {ours} | {pct(a, 0.5):.1f} / {pct(a, 0.99):.1f} / {max(a):.1f} "
            f"| {pct(b, 0.5):.1f} / {pct(b, 0.99):.1f} / {max(b):.1f} "
            f"| {pct(a, 0.5) / max(pct(b, 0.5), 1e-9):.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
