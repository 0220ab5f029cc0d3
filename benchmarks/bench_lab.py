"""The lab data plane: bring-up of 200 VMs, and API call -> rule enforced on the wire.

Claims (issue 7): the time to bring up a lab of 200 VMs, and the latency from an API call
to the rule being enforced on the wire, p50/p99 over 100 changes.

What one run does (as root, with Open vSwitch, iproute2 and ethtool installed):

1. A fresh SQLite store with a one-module fabric (``--tors`` x ``--hosts-per-tor`` OVS
   hosts, policy in the vswitch); two tenants, each a /24 network and ``--vms``/2 VMs made
   through the API in one request each (in process, FastAPI's TestClient).
2. **Baseline (kernel floor):** the same number of namespaces, each joined by a veth pair
   to one switch namespace and addressed, with the same pyroute2 calls the lab's plugger
   makes but no Open vSwitch, no store and no agent; then removed.
3. **Lab bring-up:** ``Lab.up`` (private ovsdb-server + ovs-vswitchd, one bridge per host,
   ToR and aggregation, patch trunks), then one agent pass over every host
   (``HostAgent.reconcile_all``): each VM's namespace, veth, OVS port with its VLAN tag,
   port-security flows, the vswitch policy. Checked by a ping between two VMs.
4. **Rule latency:** a server VM in a group with no ingress rule listens on a TCP port;
   a prober process inside a client VM's namespace spins TCP connects (20 ms timeout) and
   reports (on the shared monotonic clock) when the port's state flips. ``--changes`` times,
   alternately, a rule allowing the port is added through the API
   (``POST /security-groups/{id}/rules``) or deleted (``DELETE /security-group-rules/{id}``);
   latency is from the call to the prober seeing the new state. The agent loop runs in the
   same process with a 50 ms interval (level-triggered polling of the store). Baseline: the
   driver's own apply of the same two vswitch documents, alternately, without store or agent.
5. ``Lab.down``; checks nothing of the lab is left.

Usage::

    sudo .venv/bin/python benchmarks/bench_lab.py [--vms 200] [--changes 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pyroute2 import IPRoute, netns
from sqlalchemy import select

from fuyun.agent import AgentLoop, HostAgent, StoreSource
from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.domain.enums import EnforcementPoint, VSwitchKind
from fuyun.domain.hostports import HostPorts
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.drivers.network import AppliedState
from fuyun.fabric.generator import GeneratorParams, generate
from fuyun.fabric.yamlio import dump_fabric
from fuyun.lab import Lab
from fuyun.policy.ir import device_name
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState

PORT = 7000
SERVER = """
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""
# Reads "open"/"closed"; spins connects until the port is in that state; prints the time.
PROBER = """
import socket, sys, time
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def attempt():
    s = socket.socket(); s.settimeout(0.02); s.bind((src, 0))
    try:
        s.connect((dst, port)); return True
    except OSError:
        return False
    finally:
        s.close()
print("ready", flush=True)
for line in sys.stdin:
    want = line.strip() == "open"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        t = time.monotonic()
        if attempt() == want:
            print(t if not want else time.monotonic(), flush=True)
            break
    else:
        print("timeout", flush=True)
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header, *[[str(c) for c in r] for r in rows]]
    width = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, width, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in width) + "|"
    return "\n".join([f"### {title}", "", line(cells[0]), sep, *map(line, cells[1:]), ""])


def kernel_floor(n: int, tag: str) -> float:
    """n namespaces, each a veth into one switch namespace, addressed: no OVS at all."""
    sw = f"fuyun-bench-{tag}"
    names = [f"fuyun-bench-{tag}-{i}" for i in range(n)]
    start = time.perf_counter()
    netns.create(sw)
    try:
        for i, ns in enumerate(names):
            netns.create(ns)
            with IPRoute(netns=sw, flags=0) as s:
                s.link("add", ifname=f"v{i}", kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
                s.link("set", index=s.link_lookup(ifname=f"v{i}")[0], state="up")
            with IPRoute(netns=ns, flags=0) as v:
                idx = v.link_lookup(ifname="eth0")[0]
                v.link("set", index=idx, address=f"fa:16:3e:00:{i >> 8:02x}:{i & 255:02x}")
                v.link("set", index=idx, state="up")
                v.addr("add", index=idx, address=f"10.250.{i >> 8}.{i & 255 or 1}", prefixlen=32)
                v.route("add", dst="0.0.0.0/0", oif=idx, scope=253)
            subprocess.run(
                ["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"],
                capture_output=True,
                check=False,
            )
        return time.perf_counter() - start
    finally:
        for ns in [*names, sw]:
            if ns in netns.listnetns():
                netns.remove(ns)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vms", type=int, default=200)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--tors", type=int, default=4)
    ap.add_argument("--hosts-per-tor", type=int, default=6)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_lab needs root (namespaces, Open vSwitch)")
    root = Path(tempfile.mkdtemp(prefix="fuyun-bench-lab-"))
    spec = generate(
        GeneratorParams(
            name="lab-bench",
            sites=1,
            modules_per_site=1,
            tors_per_module=(args.tors, args.tors),
            hosts_per_tor=(args.hosts_per_tor, args.hosts_per_tor),
            density=(10, 10),
            routed_share=0.0,
            enforcement_points=((EnforcementPoint.VSWITCH.value, 1.0),),
            linux_bridge_share=0.0,
            interconnects=(("none", 1.0),),
        )
    )
    spec = spec.model_copy(
        update={"hosts": [h.model_copy(update={"vswitch": VSwitchKind.OVS}) for h in spec.hosts]}
    )
    fabric = root / "fabric.yaml"
    fabric.write_text(dump_fabric(spec))
    db = Database(f"sqlite:///{root / 'fuyun.db'}")
    settings = Settings(database_url=db.url)
    compute = FakeComputeDriver()
    token = bootstrap(db, settings, compute, fabric=str(fabric)).token
    client = TestClient(create_app(settings, db=db, compute_driver=compute))
    op = {"Authorization": f"Bearer {token}"}

    def call(method: str, path: str, **kw: Any) -> Any:
        r = client.request(method, f"/api/v1{path}", headers=op, **kw)
        if r.status_code >= 300:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    site = spec.sites[0].name
    hosts = sorted(h.name for h in spec.hosts)
    tenants = []
    started = time.perf_counter()
    for i, name in enumerate(("bench-a", "bench-b")):
        big = {"vms": 5000, "vcpus": 50000, "ram_mb": 10**8, "ips": 5000, "bandwidth_mbps": 10**7}
        t = call("POST", "/tenants", json={"name": name, "quotas": big})["id"]
        call(
            "POST",
            "/networks",
            json={"name": "net", "cidr": f"10.{60 + i}.0.0/24", "site": site, "tenant_id": t},
        )
        tenants.append(t)
    group = call("POST", "/security-groups", json={"name": "svc", "tenant_id": tenants[0]})
    server = call(
        "POST",
        "/vms",
        json={
            "name": "srv",
            "flavor": "s1.small",
            "networks": ["net"],
            "host": hosts[0],
            "tenant_id": tenants[0],
            "security_groups": ["svc"],
        },
    )["items"][0]
    probe = call(
        "POST",
        "/vms",
        json={
            "name": "cli",
            "flavor": "s1.small",
            "networks": ["net"],
            "host": hosts[-1],
            "tenant_id": tenants[0],
        },
    )["items"][0]
    rest = args.vms - 2
    for i, t in enumerate(tenants):
        count = rest // 2 + (rest % 2 if i == 0 else 0)
        call(
            "POST",
            "/vms",
            json={
                "name": f"vm{i}",
                "flavor": "s1.small",
                "networks": ["net"],
                "count": count,
                "tenant_id": t,
            },
        )
    log(
        f"store: {len(hosts)} hosts, {args.vms} VMs through the API in "
        f"{time.perf_counter() - started:.1f} s"
    )

    floor = kernel_floor(args.vms, os.urandom(2).hex())
    log(f"kernel floor: {args.vms} namespaces + veth + addresses in {floor:.2f} s")

    lab = Lab(root / "lab")
    rows_up: list[list[Any]] = []
    rows_lat: list[list[Any]] = []
    tag = ""
    try:
        t0 = time.perf_counter()
        manifest = lab.up(spec)
        tag = manifest.tag
        t_up = time.perf_counter() - t0
        driver = lab.driver()
        agent = HostAgent(StoreSource(db), driver)
        t1 = time.perf_counter()
        passes = agent.reconcile_all(hosts, audit=False)
        t_converge = time.perf_counter() - t1
        errors = {p.host: p.errors for p in passes if p.errors}
        if errors:
            raise SystemExit(f"agent errors: {errors}")
        vm_ns = lab.status().vm_namespaces
        log(f"lab up {t_up:.2f} s, agent converged {len(vm_ns)} VMs in {t_converge:.2f} s")
        total = t_up + t_converge
        rows_up = [
            [
                "lab up: daemons, bridges, trunks",
                f"{t_up:.2f} s",
                f"{len(manifest.bridges)} bridges",
            ],
            ["agent: first pass, every host", f"{t_converge:.2f} s", f"{len(vm_ns)} VM namespaces"],
            ["total bring-up", f"{total:.2f} s", f"{total / args.vms * 1000:.0f} ms per VM"],
            [
                "kernel floor (namespaces + veth, no OVS)",
                f"{floor:.2f} s",
                f"bring-up = {total / floor:.1f}x floor",
            ],
        ]

        def binding(host: str, vm_id: str) -> Any:
            with db.read_session() as s:
                text = s.scalar(
                    select(DeviceState.rendered).where(
                        DeviceState.device_name == host, DeviceState.enforcement_point == "ports"
                    )
                )
            return next(p for p in HostPorts.from_json(text).ports if p.vm_id == vm_id)

        import uuid

        srv_b = binding(hosts[0], server["id"])
        cli_b = binding(hosts[-1], probe["id"])
        srv_ns = lab.vm_namespace(device_name(uuid.UUID(srv_b.port_id)))
        cli_ns = lab.vm_namespace(device_name(uuid.UUID(cli_b.port_id)))
        srv = subprocess.Popen(
            ["ip", "netns", "exec", srv_ns, sys.executable, "-c", SERVER % PORT],
            stdout=subprocess.PIPE,
            text=True,
        )
        prober = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                cli_ns,
                sys.executable,
                "-c",
                PROBER,
                cli_b.ips[0],
                srv_b.ips[0],
                str(PORT),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert srv.stdout and srv.stdout.readline().strip() == "ready"
        assert prober.stdout and prober.stdin and prober.stdout.readline().strip() == "ready"

        def wire(state: str) -> float | None:
            assert prober.stdin and prober.stdout
            prober.stdin.write(state + "\n")
            prober.stdin.flush()
            answer = prober.stdout.readline().strip()
            return None if answer == "timeout" else float(answer)

        wire("closed")
        loop = AgentLoop(agent, hosts, interval_s=0.05)
        loop.start()
        api_ms, wire_ms, misses = [], [], 0
        docs: dict[str, str] = {}
        rule_id = None
        try:
            for i in range(args.changes):
                t0 = time.monotonic()
                if rule_id is None:
                    rule_id = call(
                        "POST",
                        f"/security-groups/{group['id']}/rules",
                        json={"direction": "ingress", "protocol": "tcp", "port_min": PORT},
                    )["id"]
                    want = "open"
                else:
                    call("DELETE", f"/security-group-rules/{rule_id}")
                    rule_id, want = None, "closed"
                api_ms.append((time.monotonic() - t0) * 1000)
                seen = wire(want)
                if seen is None:
                    misses += 1
                else:
                    wire_ms.append((seen - t0) * 1000)
                if len(docs) < 2:
                    with db.read_session() as s:
                        docs[want] = s.scalar(
                            select(DeviceState.rendered).where(
                                DeviceState.device_name == hosts[0],
                                DeviceState.enforcement_point == "vswitch",
                            )
                        )
                if (i + 1) % 20 == 0:
                    log(f"{i + 1} changes: wire p50 {statistics.median(wire_ms):.0f} ms")
        finally:
            loop.stop()
        apply_ms = []
        for i in range(args.changes):
            text = docs["open" if i % 2 == 0 else "closed"]
            state = AppliedState("host", hosts[0], "vswitch", 10_000 + i, f"bench-{i}")
            t0 = time.monotonic()
            driver.apply(state, text)
            apply_ms.append((time.monotonic() - t0) * 1000)
        prober.kill()
        srv.kill()
        prober.wait()
        srv.wait()
        driver.close()
        rows_lat = [
            [
                "API call returns (recompile + commit)",
                f"{pct(api_ms, 0.5):.1f}",
                f"{pct(api_ms, 0.99):.1f}",
                len(api_ms),
            ],
            [
                "API call -> enforced on the wire",
                f"{pct(wire_ms, 0.5):.1f}",
                f"{pct(wire_ms, 0.99):.1f}",
                f"{len(wire_ms)} ({misses} missed 10 s)",
            ],
            [
                "baseline: driver apply of the same documents",
                f"{pct(apply_ms, 0.5):.1f}",
                f"{pct(apply_ms, 0.99):.1f}",
                len(apply_ms),
            ],
            [
                "ratio wire / driver apply (p50)",
                f"{pct(wire_ms, 0.5) / pct(apply_ms, 0.5):.1f}x",
                "",
                "",
            ],
        ]
    finally:
        t0 = time.perf_counter()
        lab.down()
        t_down = time.perf_counter() - t0
        left = [n for n in netns.listnetns() if tag and n.startswith(f"fuyun-lab-{tag}")]
        log(f"lab down in {t_down:.2f} s")
    print()
    print(
        table(
            f"Bring-up: {args.vms} VMs on {len(hosts)} hosts "
            f"({args.tors} ToRs x {args.hosts_per_tor})",
            ["what", "time", "note"],
            rows_up,
        )
    )
    print(
        table(
            f"Rule change latency over {args.changes} changes (ms)",
            ["what", "p50", "p99", "n"],
            rows_lat,
        )
    )
    print(f"lab down: {t_down:.2f} s; namespaces of the lab left: {len(left)}")


if __name__ == "__main__":
    main()
