"""IPAM: allocations per second and next-free latency, fuyun against Nautobot, in one run.

Claim (issue 3): fuyun hands out addresses without duplicates at any concurrency, and
its next-free costs the same on a /24, a /16 and a /8, however full they are. Peer:
Nautobot (the NetBox fork on PyPI) serving ``POST /api/ipam/prefixes/<id>/available-ips/``
from its own venv, PostgreSQL and Redis (``benchmarks/peers/nautobot.py``; its set-up is
cached under ``benchmarks/.cache``).

What is measured, the same way on both sides, over HTTP on 127.0.0.1:

- allocations/s with 1, 4, 16 and 32 concurrent clients (threads, one HTTP client each),
  successful allocations only, p50/p99 latency, HTTP statuses, duplicate addresses;
- next-free latency on a /24, a /16 and a /8 as they fill (median of 3 single
  allocations at each occupancy).

fuyun's allocation is ``POST /api/v1/ports`` on a tenant network: MAC, next-free IP,
quota claim and audit event in one transaction — more work than Nautobot's call does.
fuyun runs on SQLite (one API process) and on PostgreSQL (two API processes).

    .venv/bin/python benchmarks/bench_ipam.py            # everything (~10 min, first run more)
    .venv/bin/python benchmarks/bench_ipam.py --skip-peer --fill 2000 --total 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FUYUN_ARGON2_PROFILE", "fast")

from tests.support.live import api_servers  # noqa: E402
from tests.support.postgres import running_cluster  # noqa: E402

from fuyun.config import Settings  # noqa: E402
from fuyun.domain.enums import Role  # noqa: E402
from fuyun.drivers.compute.fake import FakeComputeDriver  # noqa: E402
from fuyun.services import identity, networks, tenants  # noqa: E402
from fuyun.services.bootstrap import bootstrap  # noqa: E402
from fuyun.services.principal import SYSTEM  # noqa: E402
from fuyun.store.engine import Database  # noqa: E402

CLIENTS = (1, 4, 16, 32)
SIZES = ("10.0.0.0/24", "10.0.0.0/16", "10.0.0.0/8")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


class Stage:
    """A seeded fuyun store: one tenant (own VRF) per network, tokens for each."""

    def __init__(self, db: Database):
        self.db = db
        bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small")
        self.count = 0

    def network(self, cidr: str) -> tuple[str, str]:
        """A fresh tenant with one network on ``cidr``; answers (network id, token)."""
        self.count += 1
        tenant = tenants.create_tenant(
            self.db, SYSTEM, name=f"bench{self.count}", limits={"ips": 10_000_000}
        )
        user = identity.create_user(
            self.db,
            SYSTEM,
            username=f"bench{self.count}-admin",
            role=Role.TENANT_ADMIN,
            tenant_id=tenant.id,
            password=None,
        )
        token = identity.create_token(self.db, identity.principal_of(user)).secret
        ctx = networks.Networking(db=self.db, settings=Settings(database_url=self.db.url))
        net = networks.create_network(
            ctx,
            SYSTEM,
            networks.NetworkRequest(
                name="bench", cidr=cidr, tenant_id=tenant.id, growth=networks.Growth.REFUSE
            ),
        )
        return str(net.id), token


def allocations(
    urls: list[str], token: str, network_id: str, clients: int, total: int
) -> dict[str, Any]:
    lock = threading.Lock()
    claimed = 0
    results: list[tuple[int, float, str | None]] = []

    def worker(i: int) -> None:
        nonlocal claimed
        mine = []
        with httpx.Client(
            base_url=urls[i % len(urls)], timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            while True:
                with lock:
                    if claimed >= total:
                        break
                    claimed += 1
                t = time.perf_counter()
                r = client.post("/api/v1/ports", json={"network_id": network_id})
                ip = r.json()["ips"][0] if r.status_code == 201 else None
                mine.append((r.status_code, time.perf_counter() - t, ip))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ips = [ip for _, _, ip in results if ip]
    lat = [s for _, s, _ in results]
    return {
        "clients": clients,
        "requests": len(results),
        "success": len(ips),
        "allocations_per_s": round(len(ips) / wall, 1),
        "p50_ms": round(_pct(lat, 50) * 1000, 1),
        "p99_ms": round(_pct(lat, 99) * 1000, 1),
        "by_status": dict(Counter(c for c, _, _ in results)),
        "duplicates": len(ips) - len(set(ips)),
    }


def next_free(
    url: str, token: str, network_id: str, fill: int, every: int
) -> list[tuple[int, float]]:
    samples = []
    with httpx.Client(
        base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        occupancy = 0
        point = 0
        while point <= fill:
            while occupancy < point:
                r = client.post("/api/v1/ports", json={"network_id": network_id})
                if r.status_code != 201:
                    return samples
                occupancy += 1
            timings = []
            for _ in range(3):
                t = time.perf_counter()
                r = client.post("/api/v1/ports", json={"network_id": network_id})
                if r.status_code != 201:
                    break
                timings.append(time.perf_counter() - t)
                occupancy += 1
            if timings:
                samples.append((point, statistics.median(timings)))
            point = max(point + every, occupancy)
    return samples


def run_fuyun(label: str, url: str, servers: int, args: argparse.Namespace) -> dict[str, Any]:
    db = Database(url)
    stage = Stage(db)
    out: dict[str, Any] = {"label": label, "alloc": [], "next_free": {}}
    with api_servers(url, servers, env={"FUYUN_ARGON2_PROFILE": "fast"}) as urls:
        for clients in CLIENTS:
            net, token = stage.network("10.0.0.0/16")
            out["alloc"].append(allocations(urls, token, net, clients, args.total))
            print(f"  fuyun/{label} {clients:>2} clients: {out['alloc'][-1]}", flush=True)
        for cidr in SIZES:
            net, token = stage.network(cidr)
            out["next_free"][cidr] = next_free(
                urls[0],
                token,
                net,
                min(args.fill, 250) if cidr.endswith("/24") else args.fill,
                args.every,
            )
            print(f"  fuyun/{label} next-free {cidr}: {out['next_free'][cidr]}", flush=True)
    db.dispose()
    return out


def run_peer(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.peers import nautobot

    started = time.perf_counter()
    peer = nautobot.ensure_nautobot()
    out: dict[str, Any] = {
        "label": f"nautobot {peer.version}",
        "alloc": [],
        "next_free": {},
        "setup_s": round(time.perf_counter() - started, 1),
    }
    try:
        for i, clients in enumerate(CLIENTS):
            res = nautobot.measure_allocations(
                peer, f"10.{100 + i}.0.0/16", clients, args.peer_total
            )
            out["alloc"].append(res)
            print(f"  nautobot {clients:>2} clients: {res}", flush=True)
        for i, cidr in enumerate(("10.200.0.0/24", "10.210.0.0/16", "11.0.0.0/8")):
            fill = min(args.fill, 250) if cidr.endswith("/24") else args.fill
            out["next_free"][SIZES[i]] = nautobot.measure_next_free_latency(
                peer, cidr, fill, args.every
            )
            print(f"  nautobot next-free {cidr}: {out['next_free'][SIZES[i]]}", flush=True)
    finally:
        peer.stop()
    return out


@contextmanager
def postgres() -> Iterator[str | None]:
    try:
        with running_cluster() as cluster:
            yield cluster.url("fuyun_template")
    except RuntimeError as exc:
        print(f"PostgreSQL unavailable ({exc}); skipping that run")
        yield None


def table(runs: list[dict[str, Any]]) -> None:
    print("\nallocations/s (successful) [p99 ms] {statuses} duplicates")
    print(f"{'':>24}" + "".join(f"{c:>24}" for c in CLIENTS))
    for run in runs:
        cells = [
            f"{a['allocations_per_s']:>8} [{a['p99_ms']:>6}] d={a['duplicates']}"
            for a in run["alloc"]
        ]
        print(f"{run['label']:>24}" + "".join(f"{c:>24}" for c in cells))
    print("\nnext-free latency, ms (occupancy: first -> last sample)")
    for run in runs:
        for cidr, samples in run["next_free"].items():
            if samples:
                first, last = samples[0], samples[-1]
                print(
                    f"{run['label']:>24} {cidr:>14}: {first[1] * 1000:7.1f} @{first[0]:<6} "
                    f"-> {last[1] * 1000:7.1f} @{last[0]}"
                )
    peer = next((r for r in runs if r["label"].startswith("nautobot")), None)
    if peer:
        print(
            "\nratios, fuyun / nautobot (allocations/s at each client count; "
            "next-free at the last sample)"
        )
        for run in runs:
            if run is peer:
                continue
            ratios = [
                f"{a['allocations_per_s'] / max(p['allocations_per_s'], 0.1):.1f}x"
                for a, p in zip(run["alloc"], peer["alloc"], strict=True)
            ]
            nf = [
                f"{cidr} {peer['next_free'][cidr][-1][1] / run['next_free'][cidr][-1][1]:.0f}x"
                for cidr in SIZES
                if run["next_free"].get(cidr) and peer["next_free"].get(cidr)
            ]
            print(
                f"{run['label']:>24}: alloc {' '.join(ratios)}; next-free faster by {', '.join(nf)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total", type=int, default=640, help="fuyun allocations per run")
    parser.add_argument("--peer-total", type=int, default=200, help="Nautobot allocations")
    parser.add_argument(
        "--fill", type=int, default=5000, help="addresses before the last next-free sample"
    )
    parser.add_argument("--every", type=int, default=1000, help="sample every N addresses")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(run_fuyun("sqlite", f"sqlite:///{tmp}/ipam.db", 1, args))
    if not args.skip_postgres:
        with postgres() as url:
            if url:
                runs.append(run_fuyun("postgresql x2", url, 2, args))
    if not args.skip_peer:
        runs.append(run_peer(args))
    table(runs)


if __name__ == "__main__":
    main()
