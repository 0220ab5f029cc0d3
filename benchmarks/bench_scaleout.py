"""Scale-out: API creates/s, reads/s and p99 with 1, 2 and 4 API processes on PostgreSQL,
with PostgreSQL's own ``pgbench`` TPS on the same machine in the same run as the ceiling.

Claim (issue 10): API processes share nothing but PostgreSQL, so throughput grows with
processes until the machine (here: 2 shared cores) or the database is the limit.

Each run gets a fresh database copied from a migrated template, the same fabric (one
module, 60 hosts) and a tenant with room for every VM. The API processes run
workflows inline (``fuyun serve --workers N``'s default); clients are threads with one
keep-alive HTTP client each, spread over the processes round robin.

- creates: ``POST /api/v1/vms`` (one VM with a NIC on a tenant network: quota, placement
  claim, port, address, MAC, policy recompile, boot on the ``fake`` driver, audit);
- reads: ``GET /api/v1/vms/{id}`` over the VMs just created (authentication included);
- ceiling: ``pgbench`` TPC-B-like (writes) and ``-S`` (select only), same clients.

    .venv/bin/python benchmarks/bench_scaleout.py                       # ~5 min
    .venv/bin/python benchmarks/bench_scaleout.py --creates 100 --reads 500 --pgbench-s 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FUYUN_ARGON2_PROFILE", "fast")

from tests.support.live import api_servers  # noqa: E402
from tests.support.postgres import PgCluster, running_cluster  # noqa: E402
from tests.support.scaleout import agent_fabric  # noqa: E402

from fuyun.config import Settings  # noqa: E402
from fuyun.drivers.compute.fake import FakeComputeDriver  # noqa: E402
from fuyun.services.bootstrap import bootstrap  # noqa: E402
from fuyun.store.engine import Database  # noqa: E402

PROCESSES = (1, 2, 4)
QUOTAS = {"vms": 5000, "vcpus": 50000, "ram_mb": 50_000_000, "ips": 5000, "bandwidth_mbps": 10**7}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _drive(
    urls: list[str], token: str, clients: int, jobs: list[tuple[str, str, Any]]
) -> dict[str, Any]:
    """Run ``jobs`` (method, path, body) over ``clients`` threads; rate and latencies."""
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: list[Any] = []
    queue = list(jobs)

    def one(i: int) -> None:
        with httpx.Client(
            base_url=f"{urls[i % len(urls)]}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        ) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    method, path, body = queue.pop()
                started = time.perf_counter()
                r = http.request(method, path, json=body)
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if method == "POST" and r.status_code == 201:
                        bodies.append(r.json())

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))
    wall = time.perf_counter() - started
    ok = sum(n for s, n in statuses.items() if s < 300)
    return {
        "per_s": round(ok / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else 0.0,
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "statuses": statuses,
        "bodies": bodies,
    }


def run_api(cluster: PgCluster, processes: int, args: argparse.Namespace) -> dict[str, Any]:
    url = cluster.create_database()
    db = Database(url)
    with tempfile.TemporaryDirectory() as tmp:
        fabric = agent_fabric(Path(tmp))
        token = bootstrap(
            db, Settings(database_url=url), FakeComputeDriver(), fabric=str(fabric)
        ).token
    db.dispose()
    env = {
        "FUYUN_WORKFLOW_RUNNER": "inline",
        "FUYUN_RECONCILE_IN_PROCESS": "false",
        "FUYUN_PLACEMENT_SUBSET_SIZE": str(args.subset_size),
    }
    try:
        with api_servers(url, count=processes, env=env) as urls:
            op = httpx.Client(
                base_url=f"{urls[0]}/api/v1",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            # One tenant (own network) per client: partners do not queue on each other's
            # network lock, as they would not in production.
            tenants = []
            for i in range(args.clients):
                tenant = op.post("/tenants", json={"name": f"bench{i}", "quotas": QUOTAS}).json()
                r = op.post(
                    "/networks",
                    json={
                        "name": "app",
                        "cidr": f"10.{16 + i}.0.0/16",
                        "site": "sz1",
                        "tenant_id": tenant["id"],
                    },
                )
                assert r.status_code == 201, r.text
                tenants.append(tenant["id"])
            warm = [("GET", "/vms?limit=1", None)] * (processes * 4)
            _drive(urls, token, processes, warm)
            creates = [
                (
                    "POST",
                    "/vms",
                    {
                        "name": f"b{i}",
                        "flavor": "s1.small",
                        "networks": ["app"],
                        "tenant_id": tenants[i % len(tenants)],
                    },
                )
                for i in range(args.creates)
            ]
            created = _drive(urls, token, args.clients, creates)
            ids = [b["items"][0]["id"] for b in created.pop("bodies")]
            reads = [("GET", f"/vms/{ids[i % len(ids)]}", None) for i in range(args.reads)]
            read = _drive(urls, token, args.clients, reads)
            read.pop("bodies")
    finally:
        cluster.drop_database(url)
    return {"processes": processes, "creates": created, "reads": read}


def pgbench(cluster: PgCluster, args: argparse.Namespace) -> dict[str, float]:
    """TPS of pgbench's TPC-B-like script and of its select-only script."""
    name = "pgbench_ceiling"
    out: dict[str, float] = {}
    base = [
        str(cluster.bin / "pgbench"),
        "-h",
        "127.0.0.1",
        "-p",
        str(cluster.port),
        "-U",
        "postgres",
    ]
    prefix = ["runuser", "-u", cluster.as_user, "--"] if cluster.as_user else []

    def run(*extra: str) -> str:
        return subprocess.run(
            [*prefix, *base, *extra], check=True, capture_output=True, text=True, timeout=600
        ).stdout

    subprocess.run(
        [
            *prefix,
            str(cluster.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            name,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    run("-i", "-q", "-s", str(args.pgbench_scale), name)
    for label, extra in (("tpcb", ()), ("select", ("-S",))):
        text = run("-c", str(args.clients), "-j", "2", "-T", str(args.pgbench_s), *extra, name)
        tps = [line for line in text.splitlines() if line.startswith("tps")]
        out[label] = float(tps[-1].split("=")[1].split()[0]) if tps else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pgbench-s", type=int, default=15, help="seconds per pgbench run")
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument(
        "--subset-size", type=int, default=8, help="FUYUN_PLACEMENT_SUBSET_SIZE of the APIs"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with running_cluster() as cluster:
        ceiling = pgbench(cluster, args)
        runs = [run_api(cluster, n, args) for n in PROCESSES]
    print(
        f"\n1-minute load average at start: {load:.1f} on {os.cpu_count()} cores; "
        f"placement subset size {args.subset_size}"
    )
    print(
        f"pgbench ({args.clients} clients, {args.pgbench_s} s): TPC-B-like {ceiling['tpcb']:.0f} "
        f"TPS, select-only {ceiling['select']:.0f} TPS"
    )
    print(
        f"\n{'API processes':>14} {'creates/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'reads/s':>9} {'p50 ms':>8} {'p99 ms':>8}  statuses"
    )
    for r in runs:
        c, d = r["creates"], r["reads"]
        print(
            f"{r['processes']:>14} {c['per_s']:>10} {c['p50_ms']:>8} {c['p99_ms']:>8} "
            f"{d['per_s']:>9} {d['p50_ms']:>8} {d['p99_ms']:>8}  {c['statuses']} {d['statuses']}"
        )
    one = runs[0]
    print("\nratios")
    for r in runs[1:]:
        creates = r["creates"]["per_s"] / max(one["creates"]["per_s"], 0.1)
        reads = r["reads"]["per_s"] / max(one["reads"]["per_s"], 0.1)
        print(f"  {r['processes']} vs 1 process: creates x{creates:.2f}, reads x{reads:.2f}")
    best_c = max(r["creates"]["per_s"] for r in runs)
    best_r = max(r["reads"]["per_s"] for r in runs)
    print(f"  best creates/s vs pgbench TPC-B TPS: {best_c / max(ceiling['tpcb'], 0.1):.3f}")
    print(f"  best reads/s vs pgbench select-only TPS: {best_r / max(ceiling['select'], 0.1):.3f}")


if __name__ == "__main__":
    main()
