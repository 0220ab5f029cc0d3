"""Route leaks: what they cost verify and the ToR renderer, against the same world without.

A world of ``--tenants`` tenants, each one VRF with ``--endpoints`` VMs on its own /24,
spread over hosts of 40 VMs; every tenant's default-like policy (egress anything, ingress
tcp 80 from anywhere and ICMP from 10.0.0.0/8). ``--leaks`` approved leaks join random
pairs of VRFs (each side's /24). Printed: ``analyse()`` (verify) without leaks and with,
median of ``--repeat`` runs, the ratio, and how many cross-VRF pairs the leaks opened;
then one ToR's NX-OS text with the routes of every leak against the same ToR without.

    .venv/bin/python benchmarks/bench_route_leaks.py
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fuyun.netsvc.leaks import Export, LeakPath
from fuyun.policy.compile import GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import DevicePolicy, Direction, Endpoint, Gateway, Route
from fuyun.policy.render import nxos
from fuyun.verify.reachability import analyse


def world(tenants: int, per: int, rng: random.Random) -> tuple[list[DevicePolicy], list[str]]:
    rules: dict[uuid.UUID, list[GroupRule]] = {}
    endpoints, vrfs = [], []
    for t in range(tenants):
        tenant, vrf = uuid.UUID(int=t + 1), uuid.UUID(int=10**6 + t)
        group, seg = uuid.UUID(int=2 * 10**6 + t), uuid.UUID(int=3 * 10**6 + t)
        vrfs.append(str(vrf))

        def rid() -> uuid.UUID:
            return uuid.UUID(int=rng.getrandbits(64))

        rules[group] = [
            GroupRule(rid(), group, Direction.EGRESS, 4),
            GroupRule(rid(), group, Direction.INGRESS, 4, "tcp", 80, 80),
            GroupRule(rid(), group, Direction.INGRESS, 4, "icmp", remote_cidr="10.0.0.0/8"),
        ]
        for i in range(per):
            endpoints.append(
                Endpoint(
                    uuid.UUID(int=rng.getrandbits(128)),
                    tenant,
                    vrf,
                    seg,
                    seg,
                    100 + t % 3000,
                    "fa:16:3e:00:00:01",
                    (f"10.{t // 256}.{t % 256}.{10 + i}",),
                    frozenset({group}),
                    host=f"h{len(endpoints) // 40}",
                )
            )
    snap = PolicySnapshot(rules, {g: {4: set(), 6: set()} for g in rules})
    by_host: dict[str, list[Endpoint]] = {}
    for e in endpoints:
        by_host.setdefault(e.host or "", []).append(e)
    return [compile_device(snap, h, "vswitch", eps) for h, eps in sorted(by_host.items())], vrfs


def cidr(vrfs: list[str], vrf: str) -> str:
    t = vrfs.index(vrf)
    return f"10.{t // 256}.{t % 256}.0/24"


def gw(prefix: str) -> str:
    return prefix.replace(".0/24", ".1")


def leaks_between(vrfs: list[str], n: int, rng: random.Random) -> list[LeakPath]:
    out = []
    for k in range(n):
        a, b = rng.sample(vrfs, 2)
        out.append(LeakPath(f"leak-{k}", a, b, (Export(cidr(vrfs, a)),), (Export(cidr(vrfs, b)),)))
    return out


def timed(fn: object, repeat: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, default=300)
    ap.add_argument("--endpoints", type=int, default=20)
    ap.add_argument("--leaks", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    devices, vrfs = world(args.tenants, args.endpoints, rng)
    leaks = leaks_between(vrfs, args.leaks, rng)
    base_s, base = timed(lambda: analyse(devices), args.repeat)
    with_s, joined = timed(lambda: analyse(devices, leaks), args.repeat)
    cross = sum(1 for r in joined.reach.values() if r.leak)  # type: ignore[attr-defined]
    n = args.tenants * args.endpoints
    print(f"verify: {n:,} endpoints, {args.tenants} VRFs, {len(devices)} hosts, {len(leaks)} leaks")
    print("| analyse() | median s | ratio |")
    print("|---|---|---|")
    print(f"| without leaks | {base_s:.3f} | 1.00 |")
    print(f"| with {len(leaks)} leaks | {with_s:.3f} | {with_s / base_s:.2f} |")
    print(f"class pairs reaching through a leak: {cross:,} (without: "
          f"{sum(1 for r in base.reach.values() if r.leak)})")  # type: ignore[attr-defined]  # fmt: skip

    vrf_ids = [uuid.UUID(v) for v in vrfs]
    gateways = [
        Gateway(100 + t, v, cidr(vrfs, str(v)), gw(cidr(vrfs, str(v))))
        for t, v in enumerate(vrf_ids[:200])
    ]
    tor = compile_device(PolicySnapshot(), "tor1", "tor-acl", [], gateways=gateways)
    routes = tuple(
        sorted(
            Route(uuid.UUID(into), e.prefix, uuid.UUID(via), gw(e.prefix), x.leak_id)
            for x in leaks
            for into, via in ((x.vrf_id, x.peer_vrf_id), (x.peer_vrf_id, x.vrf_id))
            for e in x.imported_into(into)
        )
    )
    plain_s, plain = timed(lambda: nxos.render(tor), args.repeat)
    routed_s, text = timed(lambda: nxos.render(replace(tor, routes=routes)), args.repeat)
    print()
    print(f"ToR with 200 SVIs: NX-OS text without and with {len(routes)} leak routes")
    print("| render | median ms | lines | ratio |")
    print("|---|---|---|---|")
    print(f"| without | {plain_s * 1e3:.2f} | {len(str(plain).splitlines())} | 1.00 |")
    print(f"| with routes | {routed_s * 1e3:.2f} | {len(str(text).splitlines())} | "
          f"{routed_s / plain_s:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
