"""Placement at the seed's scale: scheduling VMs on the ``tencent-2010`` fabric, end to end.

The claim under test (issue text):

    On the tencent-2010 fabric (>= 100,000 hosts), place 100,000 VMs from an empty fabric and
    then 10,000 more into a 70%-full one: placements/s end to end (placement + IPAM + commit)
    and the p50/p99 decision latency, and the controller's peak memory (goal: <= 2 GiB RSS
    holding 100,000 hosts and 1,000,000 VMs).  Goal: >= 1,000 VMs/s end to end and p99
    decision <= 5 ms on this 2-core machine.  Side by side, in the same run, with OpenStack
    Placement: Nova's loop per VM with 1 and 4 clients, at 1,000 and 10,000 hosts; report our
    placements/s over theirs as a ratio.

What one run does, in order (every step prints as it finishes; the table comes at the end):

0. **Phase A0: as shipped, within a time budget** (``--shipped-budget``, 600 s; 0 skips it),
   on a store of its own: the same workload as phase A through the unmodified ``vm.create``
   workflow, printing the rate as it goes.  Every new port joins its tenant's default
   security group, whose ingress rule refers to the group itself, so each request
   recompiles every member device (and, before batching, each VM re-read every member's
   host): the cost per VM grows with the tenant.
1. **Store.** A fresh SQLite file in a temporary directory, loaded with the fabric
   (``bootstrap``, timed), four tenants with unlimited-in-practice quotas, and per tenant one
   ``/16`` network (growth ``secondary``) in every *switched-CLOS* module.  Routed-CLOS modules
   confine a VLAN to one ToR, so there a tenant opens a ``/23`` "rack network" whenever its
   current one's ToR is full.  Every VM has one NIC, so each placement also allocates a MAC and
   an address (IPAM), grows the VLAN's span and claims MAC/ARP/VLAN table entries on the span's
   switches -- the whole ``vm.create`` workflow (place -> boot -> activate, every step persisted,
   audited) through the service layer, ``fuyun.services.vms.create_vms``, with no HTTP in
   between.  Requests ask for up to 500 VMs (the API's maximum) of ``s1.small``.  In phases A
   and B the security-policy fan-out (``provision.affected_hosts`` and ``provision.recompile``;
   ``port_hosts`` in older code) is replaced by no-ops in this process (``--with-policy``
   keeps it), so they measure what the claim names -- placement, IPAM, switch tables, the
   commit; group membership rows are still written.  Nothing under ``src/`` is changed.
2. **Phase A: 100,000 VMs from empty** (``--vms``; ``--budget`` caps the seconds), always into
   the least-filled module, the tenants taking turns.  A request never asks for more than its
   module (its ToR, in a routed module) can still hold, so failures mean a scheduler or
   bookkeeping problem, not a full fabric; they are counted and their time stays in the
   figures.
3. **Fill to 70 %** (``--fill``) *of VM slots*: the fabric's capacity for ``s1.small`` is set by
   each host's VM-density limit (1p4v..1p10v: 692,000 slots on tencent-2010), which binds long
   before vCPU (12 cores x 4), RAM or NIC bandwidth do.  Going through ``create_vms`` would take
   hours at today's rate, so the fill is *decided* by the real scheduler on the live snapshot
   (same filters, weighers, request shapes and span bookkeeping as ``Placement.place``) and
   *written* in bulk: VM, port, address and group-membership rows, free ranges, span members,
   host, switch and quota counters -- what the workflow writes, minus workflow, audit and
   device-policy rows.  The snapshot is then reloaded from the store and compared with the
   in-memory one (any mismatch is printed).
4. **Phase B: 10,000 more** (``--more``) into the 70 %-full fabric, through ``create_vms``.
5. **Decision latency.** Every ``Scheduler.select`` call of phases A and B is timed in flight
   (lock held, as in production; wall and thread-CPU time), and 2,000 (``--decisions``)
   read-only decisions are timed in isolation on the empty and on the 70 %-full snapshot.
   Full garbage collections during each phase are timed too.
6. **Memory.** ``VmHWM``/``VmRSS`` of this process at each step, and of a real controller:
   ``fuyun serve`` (as shipped) restarted on the filled store -- it re-syncs the fake
   hypervisor from every VM row and loads the 100,000-host snapshot on the first request --
   which then places ``--http-vms`` VMs over HTTP for a fresh tenant.  ``--million`` first
   tops the store up to 1,000,000 VM rows (VM rows only, beyond the fabric's density limit,
   since 692,000 slots cannot hold them) so that restart shows what holding 100,000 hosts and
   1,000,000 VMs costs.
7. **Peer.** OpenStack Placement (``benchmarks/peers/placement.py``, PostgreSQL, gunicorn 2x4)
   at 1,000 hosts (and 10,000 with ``--peer-big``) running Nova's loop -- ``GET
   /allocation_candidates`` then ``PUT /allocations`` per VM -- with 1 and 4 clients; and fuyun,
   as shipped, on a fabric of the same host count (one switched module per 2,000 hosts,
   12-core 96 GiB hosts) with the same flavor: per VM (count=1) with 1 and 4 client threads,
   per VM without a NIC, and in batches of 500.  Ratios are ours/theirs in placements/s.  CPU
   per placement is printed too: the machine is shared, and CPU time does not depend on what
   else runs.

Run (from the checkout; about 1 h 45 min on 2 cores with every option)::

    .venv/bin/python benchmarks/bench_placement.py --peer-big --million --budget 3000 \
        [--json out.json]

Others commit while a long run goes on; to measure one version, export it first and put it
ahead of the checkout on the path (the spawned ``fuyun serve`` inherits it)::

    git archive HEAD src | tar -x -C /tmp/snap && PYTHONPATH=/tmp/snap/src .venv/bin/python ...

Scaled down, e.g. for a smoke test::

    .venv/bin/python benchmarks/bench_placement.py --fabric default --vms 2000 --more 500 \
        --skip-peer --http-vms 0 --shipped-budget 60

Other flags: ``--only-shipped`` (phase A0 alone), ``--skip-fill`` (phase B on the fabric as
phase A left it), ``--skip-scale`` (the peer comparison only), ``--peer-vms N``, ``--keep``
(leave the temporary store behind).  Benchmarks here report numbers and ratios; nothing is
asserted about time.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import Table, bindparam, delete, func, insert, select, text, update

from fuyun.config import Settings
from fuyun.domain.errors import FuyunError
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.fabric.catalog import flavor as catalog_flavor
from fuyun.fabric.generator import PRESETS, GeneratorParams, generate
from fuyun.fabric.loader import load_into_store
from fuyun.ipam.addresses import pack, unpack
from fuyun.scheduler.framework import Decision, Request, Scheduler
from fuyun.scheduler.model import Cluster, Demand, HostSlot, NetworkNeed
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.memory import settle_after_startup
from fuyun.services.policy import ensure_default_group
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade
from fuyun.store.models import (
    Flavor,
    FreeRange,
    Host,
    IpAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Quota,
    Segment,
    SpanMember,
    Subnet,
    Switch,
    Vm,
)
from fuyun.store.types import utcnow

ROOT = Path(__file__).resolve().parents[1]
FUYUN = ROOT / ".venv" / "bin" / "fuyun"
FLAVOR = "s1.small"  # 1 vCPU, 2 GiB, 20 GB: the same as the Placement peer's default flavor
BATCH = vms.MAX_COUNT  # 500, the API's maximum count per request
TENANTS = 4
BIG = 10**12  # quotas that never bind
FILL_CHUNK = 25_000  # VMs decided in memory, then written, per fill round
MILLION_CHUNK = 50_000
POLL_S = 0.05
SERVE_TIMEOUT_S = 1800.0
GIB = 1 << 30
TOKEN_RE = re.compile(r"operator token: (fyt_[A-Za-z0-9_\-]+)")


# --------------------------------------------------------------------------- small helpers


def proc_memory(pid: int | str = "self") -> dict[str, int]:
    """``VmHWM`` (peak RSS) and ``VmRSS`` of a process, in bytes."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                found[key] = int(value.split()[0]) * 1024
    return found


def mib(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of unsorted ``values`` (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def code_version() -> dict[str, Any]:
    """Which fuyun this run imported, and the checkout's commit and uncommitted files.

    Others commit while a long run goes on; to measure one version, run from an export
    (``git archive HEAD src | tar -x -C DIR``) with ``PYTHONPATH=DIR/src``.
    """
    import fuyun

    def git(*cmd: str) -> str:
        done = subprocess.run(
            ["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
        return done.stdout.strip()

    return {
        "fuyun_imported_from": str(Path(fuyun.__file__).resolve().parents[1]),
        "checkout_head": git("rev-parse", "--short", "HEAD"),
        "checkout_src_changes": git("status", "--porcelain", "--", "src").splitlines(),
    }


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Run:
    """One measured stretch of placements."""

    label: str
    vms: int = 0
    requests: int = 0
    failed_requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # wall time inside the placing calls only
    cpu_s: float = 0.0  # this process's CPU time over the same calls (all threads)
    request_ms: list[float] = field(default_factory=list)
    decision_ms: list[float] = field(default_factory=list)
    decision_cpu_ms: list[float] = field(default_factory=list)  # CPU time of the same calls
    load: list[float] = field(default_factory=list)  # 1-min load average before, after
    gc2_ms: list[float] = field(default_factory=list)  # full (generation 2) collections
    kind_vms: Counter[str] = field(default_factory=Counter)  # switched / routed modules
    kind_s: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    curve: list[dict[str, Any]] = field(default_factory=list)  # the rate as the run goes on

    @contextlib.contextmanager
    def watching_gc(self) -> Iterator[None]:
        """Record how long each full garbage collection stops the world meanwhile."""
        started = [0.0]

        def callback(phase: str, info: dict[str, Any]) -> None:
            if info.get("generation") != 2:
                return
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                self.gc2_ms.append((time.perf_counter() - started[0]) * 1000)

        gc.callbacks.append(callback)
        try:
            yield
        finally:
            gc.callbacks.remove(callback)

    @property
    def rate(self) -> float:
        return self.vms / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_vm(self) -> float:
        return 1000 * self.cpu_s / self.vms if self.vms else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "vms": self.vms,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "failures": dict(self.failures.most_common(5)),
            "seconds": round(self.seconds, 2),
            "vms_per_s": round(self.rate, 1),
            "cpu_ms_per_vm": round(self.cpu_ms_per_vm, 2),
            "request_p50_ms": round(percentile(self.request_ms, 50), 1),
            "request_p99_ms": round(percentile(self.request_ms, 99), 1),
            "decisions": len(self.decision_ms),
            "decision_p50_ms": round(percentile(self.decision_ms, 50), 3),
            "decision_p99_ms": round(percentile(self.decision_ms, 99), 3),
            "decision_max_ms": round(max(self.decision_ms, default=float("nan")), 2),
            "decision_cpu_p50_ms": round(percentile(self.decision_cpu_ms, 50), 3),
            "decision_cpu_p99_ms": round(percentile(self.decision_cpu_ms, 99), 3),
            "gc2_collections": len(self.gc2_ms),
            "gc2_total_s": round(sum(self.gc2_ms) / 1000, 2),
            "gc2_max_ms": round(max(self.gc2_ms, default=0.0), 1),
            "by_kind": {
                k: {
                    "vms": n,
                    "vms_per_s": round(n / self.kind_s[k], 1) if self.kind_s[k] else None,
                }
                for k, n in self.kind_vms.items()
            },
            "load1": self.load,
            "curve": self.curve,
        }


def instrument(sched: Scheduler, wall: list[float], cpu: list[float]) -> None:
    """Time every ``select`` this scheduler instance makes: wall and thread CPU, in ms."""
    inner = Scheduler.select

    def timed(req: Request, *, explain: bool = False) -> Decision:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        try:
            return inner(sched, req, explain=explain)
        finally:
            cpu.append((time.thread_time_ns() - c0) / 1e6)
            wall.append((time.perf_counter_ns() - t0) / 1e6)

    setattr(sched, "select", timed)  # noqa: B010 - shadow the method on this instance only


@contextlib.contextmanager
def policy_fan_out_stubbed(enabled: bool) -> Iterator[None]:
    """In this process only: skip the security-policy fan-out of ``vm.create``.

    ``provision.place`` asks, per port, which hosts' policies depend on the new member of
    the tenant's default group (``ports.port_hosts``) and recompiles all their devices
    (``enforcement.recompile``).  Stubbing those two leaves placement, IPAM, switch tables,
    group membership rows and the commit as they are, so what is left is what the claim
    names.  Nothing in ``src/`` changes; ``fuyun serve`` runs as shipped.
    """
    from fuyun.services import provision

    names = [n for n in ("recompile", "port_hosts", "affected_hosts") if hasattr(provision, n)]
    saved = {n: getattr(provision, n) for n in names}
    stubs: dict[str, Callable[..., Any]] = {
        "recompile": lambda s, hosts: None,
        "port_hosts": lambda s, port_id: set(),
        "affected_hosts": lambda s, **kw: set(),
    }
    if enabled:
        for n in names:
            setattr(provision, n, stubs[n])
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(provision, n, fn)


def host_fit(cluster: Cluster, h: HostSlot, d: Demand) -> int:
    """How many more VMs of demand ``d`` the host takes (every dimension the filters check)."""
    if h.state != "active":
        return 0
    room = [
        h.max_vms - h.vm_count,
        (int(h.vcpus * cluster.cpu_ratio) - h.used_vcpus) // max(1, d.vcpus),
        (int(h.ram_mb * cluster.ram_ratio) - h.used_ram_mb) // max(1, d.ram_mb),
        (h.disk_gb - h.used_disk_gb) // max(1, d.disk_gb),
    ]
    if d.bandwidth_mbps:
        room.append((h.nic_mbps - h.used_bandwidth_mbps) // d.bandwidth_mbps)
    return max(0, min(room))


# --------------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class Planned:
    network: uuid.UUID
    tenant: uuid.UUID
    module: uuid.UUID
    count: int


@dataclass
class NetAddr:
    """Where a network's next addresses come from, for the bulk writer."""

    tenant: uuid.UUID
    vrf: uuid.UUID
    segment: uuid.UUID
    prefix_len: int
    # [subnet id, [[free range id, first, last], ...]] in the order ports.py allocates
    subnets: list[tuple[uuid.UUID, list[list[Any]]]] = field(default_factory=list)

    def free(self) -> int:
        return sum(r[2] - r[1] + 1 for _, ranges in self.subnets for r in ranges)


class Workload:
    """Tenants, their networks, and which request comes next."""

    def __init__(self, rt: Runtime, *, prefix_len: int, routed_prefix_len: int) -> None:
        self.rt = rt
        self.net_ctx = networks.Networking(db=rt.db, settings=rt.settings)
        spec = catalog_flavor(FLAVOR)
        self.demand = Demand(spec.vcpus, spec.ram_mb, spec.disk_gb, spec.bandwidth_mbps)
        self.prefix_len = prefix_len
        self.window_vms = 0  # phase A0 only: rate windows by VMs (0: by requests)
        self.routed_prefix_len = routed_prefix_len
        with rt.db.read_session() as s:
            flavor_id = s.scalar(select(Flavor.id).where(Flavor.name == FLAVOR))
        assert flavor_id is not None
        self.flavor_id: uuid.UUID = flavor_id
        self.tenants: list[uuid.UUID] = []
        self.switched_net: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = {}
        self.routed_net: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = {}
        self.routed_tor: dict[uuid.UUID, uuid.UUID] = {}  # rack network -> its ToR
        self.net_module: dict[uuid.UUID, uuid.UUID] = {}
        self.net_count = Counter[str]()
        self.turn: Counter[uuid.UUID] = Counter()
        self.exhausted: set[uuid.UUID] = set()
        self.capacity: dict[uuid.UUID, int] = {}
        self.seq = 0
        self.setup_s = 0.0  # networks opened while running (not part of placement time)
        self._macs: set[str] | None = None
        self.grown = 0  # secondary subnets the bulk fill had to add
        self._default_group: dict[uuid.UUID, uuid.UUID] = {}

    @property
    def sched(self) -> Scheduler:
        return self.rt.placement.scheduler()

    @property
    def cluster(self) -> Cluster:
        return self.sched.cluster

    def setup(self, n_tenants: int) -> None:
        c = self.cluster
        for m in c.modules:  # VM slots for the flavor: what fits now plus what is there
            hosts = (h for t in c.tors_by_module.get(m, ()) for h in c.hosts_by_tor[t])
            self.capacity[m] = sum(h.vm_count + host_fit(c, h, self.demand) for h in hosts)
        for i in range(n_tenants):
            tenant = tenants.create_tenant(
                self.rt.db,
                SYSTEM,
                name=f"bench-t{i + 1}",
                limits={k: BIG for k in ("vms", "vcpus", "ram_mb", "ips", "bandwidth_mbps")},
            )
            self.tenants.append(tenant.id)
        for m, info in sorted(c.modules.items(), key=lambda kv: kv[1].name):
            if not info.switched:
                continue
            for t in self.tenants:
                net = self._open(t, info.name, f"m-{info.name}", self.prefix_len)
                self.switched_net[(m, t)] = net

    def _open(self, tenant: uuid.UUID, module: str, name: str, prefix_len: int) -> uuid.UUID:
        started = time.perf_counter()
        net = networks.create_network(
            self.net_ctx,
            SYSTEM,
            networks.NetworkRequest(
                name=name,
                prefix_len=prefix_len,
                growth=networks.Growth.SECONDARY,
                module=module,
                tenant_id=tenant,
            ),
        )
        self.setup_s += time.perf_counter() - started
        self.net_count["switched" if name.startswith("m-") else "routed"] += 1
        self.net_module[net.id] = net.module_id
        return net.id

    def fill_fraction(self) -> float:
        used = sum(self.cluster.module_vms[m] for m in self.capacity)
        return used / max(1, sum(self.capacity.values()))

    def total_vms(self) -> int:
        return sum(self.cluster.module_vms[m] for m in self.capacity)

    def module_free(self, module: uuid.UUID) -> int:
        c = self.cluster
        return sum(
            host_fit(c, h, self.demand)
            for t in c.tors_by_module.get(module, ())
            for h in c.hosts_by_tor[t]
        )

    def tor_free(self, tor: uuid.UUID) -> int:
        c = self.cluster
        return sum(host_fit(c, h, self.demand) for h in c.hosts_by_tor[tor])

    def predict_tor(self, module: uuid.UUID) -> uuid.UUID | None:
        """The ToR a new rack network's first VM will land on (the scheduler, uninstrumented)."""
        need = NetworkNeed(uuid.UUID(int=0), module, False, {}, 1)
        decision = Scheduler.select(self.sched, Request(self.demand, (need,), strategy="pack"))
        return decision.host.tor if decision.host is not None else None

    def next_request(self, remaining: int) -> Planned | None:
        """The next request: least-filled module first, tenants in turn, sized to fit."""
        c = self.cluster
        while True:
            live = [m for m in self.capacity if m not in self.exhausted and self.capacity[m]]
            if not live:
                return None
            m = min(live, key=lambda x: (c.module_vms[x] / self.capacity[x], c.modules[x].name))
            tenant = self.tenants[self.turn[m] % len(self.tenants)]
            self.turn[m] += 1
            info = c.modules[m]
            if info.switched:
                free = self.module_free(m)
                if free == 0:
                    self.exhausted.add(m)
                    continue
                net = self.switched_net[(m, tenant)]
                return Planned(net, tenant, m, min(BATCH, remaining, free))
            current = self.routed_net.get((m, tenant))
            free = self.tor_free(self.routed_tor[current]) if current is not None else 0
            if free == 0:
                tor = self.predict_tor(m)
                if tor is None:
                    self.exhausted.add(m)
                    continue
                k = self.net_count["routed"] + 1
                current = self._open(
                    tenant, info.name, f"r-{info.name}-{k:05d}", self.routed_prefix_len
                )
                self.routed_net[(m, tenant)] = current
                self.routed_tor[current] = tor
                free = self.tor_free(tor)
            assert current is not None
            return Planned(current, tenant, m, min(BATCH, remaining, free))

    # -- live placements through the service layer ------------------------------------

    def run_live(self, n: int, label: str, budget_s: float = 0.0) -> Run:
        """Place ``n`` VMs through ``create_vms`` (or as many as ``budget_s`` seconds allow)."""
        run = Run(label, load=[load1()])
        instrument(self.sched, run.decision_ms, run.decision_cpu_ms)
        with run.watching_gc():
            self._run_live(run, n, label, budget_s)
        run.load.append(load1())
        return run

    def _run_live(self, run: Run, n: int, label: str, budget_s: float) -> None:
        mark = (0, 0.0, 0.0, 0)  # VMs, seconds, CPU seconds, requests at the window's start
        while run.vms < n and not (budget_s and run.seconds >= budget_s):
            plan = self.next_request(n - run.vms)
            if plan is None:
                say(f"  {label}: the fabric is full after {run.vms} VMs")
                break
            self.seq += 1
            req = vms.VmRequest(
                name=f"b{self.seq}",
                flavor=FLAVOR,
                count=plan.count,
                tenant_id=plan.tenant,
                networks=(str(plan.network),),
            )
            kind = "switched" if self.cluster.modules[plan.module].switched else "routed"
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                made = vms.create_vms(self.rt, SYSTEM, req)
                run.vms += len(made.vms)
                run.kind_vms[kind] += len(made.vms)
            except FuyunError as exc:  # counted, its time kept, and the run goes on
                run.failed_requests += 1
                run.failures[f"{exc.code}: {exc.message[:100]}"] += 1
                self.routed_net.pop((plan.module, plan.tenant), None)
            finally:
                dt = time.perf_counter() - t0
                run.seconds += dt
                run.kind_s[kind] += dt
                run.cpu_s += time.process_time() - c0
                run.request_ms.append(dt * 1000)
                run.requests += 1
            if self.window_vms:  # windows by size, to see the cost per VM grow (or not)
                window_full = run.vms - mark[0] >= self.window_vms
            else:
                window_full = run.requests - mark[3] >= 20 or run.seconds - mark[1] >= 60
            if window_full or run.vms >= n or (budget_s and run.seconds >= budget_s):
                vms_, secs, cpu = run.vms - mark[0], run.seconds - mark[1], run.cpu_s - mark[2]
                if vms_:
                    run.curve.append(
                        {
                            "vms": run.vms,
                            "window_vms": vms_,
                            "window_vms_per_s": round(vms_ / secs, 1),
                            "window_cpu_ms_per_vm": round(1000 * cpu / vms_, 2),
                            "fabric_pct": round(100 * self.fill_fraction(), 2),
                        }
                    )
                    mark = (run.vms, run.seconds, run.cpu_s, run.requests)
                say(
                    f"  {label}: {run.vms:,} VMs in {run.seconds:,.1f} s ({run.rate:,.1f}/s; "
                    f"last {vms_:,} at {vms_ / secs if secs else 0:,.1f}/s, "
                    f"{1000 * cpu / vms_ if vms_ else 0:,.1f} ms CPU/VM), "
                    f"fabric {100 * self.fill_fraction():.1f}% full"
                )

    def sample_decisions(self, n: int, rng: random.Random) -> list[tuple[str, float, float]]:
        """``n`` read-only decisions for realistic requests (no claim): (kind, wall, CPU ms)."""
        sched = self.sched
        nets = list(self.switched_net.values()) + list(self.routed_net.values())
        with self.rt.db.read_session() as s:
            rows = list(s.scalars(select(Network).where(Network.id.in_(nets))))
            needs = {n.network_id: n for n in self.rt.placement.network_needs(s, rows)}
        pool = list(needs.values())
        out: list[tuple[str, float, float]] = []
        for _ in range(n):
            need = rng.choice(pool)
            req = Request(self.demand, (need,), strategy="pack")
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            Scheduler.select(sched, req)
            c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
            kind = "switched" if need.switched else "routed"
            out.append((kind, (t1 - t0) / 1e6, (c1 - c0) / 1e6))
        return out

    # -- the bulk fill -------------------------------------------------------------------

    def fill(self, target: int, decision_sink: list[float]) -> dict[str, Any]:
        """Decide ``target`` total VMs with the real scheduler in memory; write them in bulk."""
        started = time.perf_counter()
        rt = self.rt
        with rt.db.read_session() as s:
            rows = list(s.scalars(select(Network)))
            needs = {n.network_id: n for n in rt.placement.network_needs(s, rows)}
        placed = 0
        decide_s = write_s = 0.0
        while self.total_vms() < target:
            chunk: list[tuple[uuid.UUID, HostSlot, Decision]] = []
            switches_before = {
                sid: (sw.used_mac, sw.used_arp, sw.used_vlans)
                for sid, sw in self.cluster.switches.items()
            }
            t0 = time.perf_counter()
            while len(chunk) < FILL_CHUNK and self.total_vms() < target:
                plan = self.next_request(target - self.total_vms())
                if plan is None:
                    break
                if plan.network not in needs:
                    module = plan.module
                    needs[plan.network] = NetworkNeed(plan.network, module, False, {}, 1)
                req = Request(self.demand, (needs[plan.network],), strategy="pack")
                for k in range(plan.count):
                    c0 = time.perf_counter_ns()
                    decision = Scheduler.select(self.sched, replace(req, batch=plan.count - k))
                    decision_sink.append((time.perf_counter_ns() - c0) / 1e6)
                    if decision.host is None:
                        self.routed_net.pop((plan.module, plan.tenant), None)
                        break
                    self.cluster.claim(decision.host.id, self.demand)
                    req, _ = rt.placement._after(req, decision.host)
                    chunk.append((plan.network, decision.host, decision))
                needs[plan.network] = req.networks[0]
            decide_s += time.perf_counter() - t0
            if not chunk:
                break
            t0 = time.perf_counter()
            self._write(chunk, switches_before, needs)
            write_s += time.perf_counter() - t0
            placed += len(chunk)
            say(
                f"  fill: {placed:,} VMs decided and written "
                f"(decide {decide_s:,.0f} s, write {write_s:,.0f} s), "
                f"fabric {100 * self.fill_fraction():.1f}% full"
            )
        return {
            "vms": placed,
            "decide_s": round(decide_s, 1),
            "write_s": round(write_s, 1),
            "total_s": round(time.perf_counter() - started, 1),
        }

    def _addresses(self, wanted: Counter[uuid.UUID]) -> dict[uuid.UUID, NetAddr]:
        """Free ranges per network, growing a network by a secondary subnet if it must."""
        out = {net_id: self._read_addresses(net_id) for net_id in wanted}
        for net_id, addr in out.items():
            while addr.free() < wanted[net_id]:  # what _grow would do, ahead of time
                self.grown += 1
                networks.add_subnet_to(
                    self.net_ctx,
                    SYSTEM,
                    net_id,
                    cidr=None,
                    prefix_len=addr.prefix_len,
                    gateway=None,
                )
                addr = out[net_id] = self._read_addresses(net_id)
        return out

    def _read_addresses(self, net_id: uuid.UUID) -> NetAddr:
        with self.rt.db.read_session() as s:
            net = s.get(Network, net_id)
            assert net is not None
            segment = networks.latest_segment(s, net)
            subnets = list(
                s.scalars(
                    select(Subnet)
                    .join(Segment, Segment.id == Subnet.segment_id)
                    .where(Subnet.network_id == net_id, Subnet.family == 4)
                    .order_by(Segment.index, Subnet.created_at, Subnet.first)
                )
            )
            addr = NetAddr(net.tenant_id, net.vrf_id, segment.id, subnets[0].prefix_len)
            for sub in subnets:
                ranges = [
                    [r.id, unpack(r.first), unpack(r.last)]
                    for r in s.scalars(
                        select(FreeRange)
                        .where(FreeRange.subnet_id == sub.id)
                        .order_by(FreeRange.first)
                    )
                ]
                addr.subnets.append((sub.id, ranges))
        return addr

    def _write(
        self,
        chunk: list[tuple[uuid.UUID, HostSlot, Decision]],
        switches_before: dict[uuid.UUID, tuple[int, int, int]],
        needs: dict[uuid.UUID, NetworkNeed],
    ) -> None:
        """Persist one chunk of in-memory placements as the workflow would have."""
        rt, d = self.rt, self.demand
        addrs = self._addresses(Counter(net for net, _, _ in chunk))
        if not self._default_group:  # every port joins its tenant's default security group
            with rt.db.write_session() as s:
                for tenant in self.tenants:
                    self._default_group[tenant] = ensure_default_group(s, tenant).id
        now = utcnow()
        if self._macs is None:
            with rt.db.read_session() as s:
                self._macs = set(s.scalars(select(Port.mac)))
        taken = self._macs
        rng = random.Random(self.seq)
        vm_rows, port_rows, ip_rows, member_rows = [], [], [], []
        per_host: Counter[uuid.UUID] = Counter()
        per_tenant: Counter[uuid.UUID] = Counter()
        per_net: Counter[uuid.UUID] = Counter()
        consumed: dict[uuid.UUID, int] = {}  # free range id -> its new first address
        emptied: set[uuid.UUID] = set()
        for net_id, host, decision in chunk:
            a = addrs[net_id]
            self.seq += 1
            vm_id, port_id = uuid.uuid4(), uuid.uuid4()
            vm_rows.append(
                {
                    "id": vm_id,
                    "tenant_id": a.tenant,
                    "name": f"f{self.seq}",
                    "flavor_id": self.flavor_id,
                    "image": "debian-12",
                    "host_id": host.id,
                    "state": "active",
                    "vcpus": d.vcpus,
                    "ram_mb": d.ram_mb,
                    "disk_gb": d.disk_gb,
                    "bandwidth_mbps": d.bandwidth_mbps,
                    "placement": {
                        "considered": decision.considered,
                        "removed": dict(decision.removed),
                        "top": decision.top,
                        "strategy": "pack",
                    },
                    "created_at": now,
                    "updated_at": now,
                }
            )
            while True:
                mac_low = rng.getrandbits(24)
                mac = f"fa:16:3e:{mac_low >> 16:02x}:{mac_low >> 8 & 255:02x}:{mac_low & 255:02x}"
                if mac not in taken:
                    taken.add(mac)
                    break
            port_rows.append(
                {
                    "id": port_id,
                    "tenant_id": a.tenant,
                    "network_id": net_id,
                    "segment_id": a.segment,
                    "vm_id": vm_id,
                    "host_id": host.id,
                    "name": "eth0",
                    "mac": mac,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            member_rows.append({"port_id": port_id, "group_id": self._default_group[a.tenant]})
            subnet_id, address = self._take(a, consumed, emptied)
            ip_rows.append(
                {
                    "id": uuid.uuid4(),
                    "vrf_id": a.vrf,
                    "subnet_id": subnet_id,
                    "address": pack(address),
                    "family": 4,
                    "port_id": port_id,
                    "state": "allocated",
                    "released_at": None,
                }
            )
            per_host[host.id] += 1
            per_tenant[a.tenant] += 1
            per_net[net_id] += 1
        hosts_t = cast(Table, Host.__table__)
        switches_t = cast(Table, Switch.__table__)
        quotas_t = cast(Table, Quota.__table__)
        with rt.db.write_session() as s:
            s.execute(insert(Vm), vm_rows)
            s.execute(insert(Port), port_rows)
            s.execute(insert(IpAllocation), ip_rows)
            s.execute(insert(PortSecurityGroup), member_rows)
            for range_id in emptied:
                s.execute(delete(FreeRange).where(FreeRange.id == range_id))
            for range_id, first in consumed.items():
                if range_id not in emptied:
                    s.execute(
                        update(FreeRange).where(FreeRange.id == range_id).values(first=pack(first))
                    )
            s.execute(
                update(hosts_t)
                .where(hosts_t.c.id == bindparam("b_id"))
                .values(
                    vm_count=hosts_t.c.vm_count + bindparam("b_n"),
                    used_vcpus=hosts_t.c.used_vcpus + bindparam("b_cpu"),
                    used_ram_mb=hosts_t.c.used_ram_mb + bindparam("b_ram"),
                    used_disk_gb=hosts_t.c.used_disk_gb + bindparam("b_disk"),
                    used_bandwidth_mbps=hosts_t.c.used_bandwidth_mbps + bindparam("b_bw"),
                ),
                [
                    {
                        "b_id": h,
                        "b_n": n,
                        "b_cpu": n * d.vcpus,
                        "b_ram": n * d.ram_mb,
                        "b_disk": n * d.disk_gb,
                        "b_bw": n * d.bandwidth_mbps,
                    }
                    for h, n in per_host.items()
                ],
            )
            deltas = []
            for sid, sw in self.cluster.switches.items():
                mac0, arp0, vlan0 = switches_before[sid]
                if (sw.used_mac, sw.used_arp, sw.used_vlans) != (mac0, arp0, vlan0):
                    deltas.append(
                        {
                            "b_id": sid,
                            "b_mac": sw.used_mac - mac0,
                            "b_arp": sw.used_arp - arp0,
                            "b_vlans": sw.used_vlans - vlan0,
                        }
                    )
            if deltas:
                s.execute(
                    update(switches_t)
                    .where(switches_t.c.id == bindparam("b_id"))
                    .values(
                        used_mac=switches_t.c.used_mac + bindparam("b_mac"),
                        used_arp=switches_t.c.used_arp + bindparam("b_arp"),
                        used_vlans=switches_t.c.used_vlans + bindparam("b_vlans"),
                    ),
                    deltas,
                )
            s.execute(
                update(quotas_t)
                .where(quotas_t.c.tenant_id == bindparam("b_id"))
                .values(
                    used_vms=quotas_t.c.used_vms + bindparam("b_n"),
                    used_vcpus=quotas_t.c.used_vcpus + bindparam("b_cpu"),
                    used_ram_mb=quotas_t.c.used_ram_mb + bindparam("b_ram"),
                    used_ips=quotas_t.c.used_ips + bindparam("b_n"),
                    used_bandwidth_mbps=quotas_t.c.used_bandwidth_mbps + bindparam("b_bw"),
                ),
                [
                    {
                        "b_id": t,
                        "b_n": n,
                        "b_cpu": n * d.vcpus,
                        "b_ram": n * d.ram_mb,
                        "b_bw": n * d.bandwidth_mbps,
                    }
                    for t, n in per_tenant.items()
                ],
            )
            for net_id, n in per_net.items():
                segment = addrs[net_id].segment
                s.execute(delete(SpanMember).where(SpanMember.segment_id == segment))
                spans = [
                    {"segment_id": segment, "switch_id": tor, "ports": ports}
                    for tor, ports in needs[net_id].span_ports.items()
                    if ports > 0
                ]
                if spans:
                    s.execute(insert(SpanMember), spans)
                s.execute(
                    update(Network)
                    .where(Network.id == net_id)
                    .values(generation=Network.generation + n)
                )

    @staticmethod
    def _take(
        a: NetAddr, consumed: dict[uuid.UUID, int], emptied: set[uuid.UUID]
    ) -> tuple[uuid.UUID, int]:
        """The lowest free address of the network's first subnet with room (as ports.py)."""
        for subnet_id, ranges in a.subnets:
            if ranges:
                cur = ranges[0]
                address = cur[1]
                if cur[1] == cur[2]:
                    ranges.pop(0)
                    emptied.add(cur[0])
                else:
                    cur[1] += 1
                    consumed[cur[0]] = cur[1]
                return subnet_id, address
        raise RuntimeError("no address left after growth")  # _addresses grew it beforehand

    def compare_snapshot(self) -> dict[str, float]:
        """Reload the snapshot from the store; count hosts/switches the two disagree on."""
        old = self.cluster
        self.rt.placement.invalidate()
        started = time.perf_counter()
        new = self.cluster
        load_s = time.perf_counter() - started
        host_cols = ("vm_count", "used_vcpus", "used_ram_mb", "used_disk_gb", "used_bandwidth_mbps")
        host_bad = sum(
            1
            for hid, h in new.hosts.items()
            if any(getattr(h, c) != getattr(old.hosts[hid], c) for c in host_cols)
        )
        sw_cols = ("used_mac", "used_arp", "used_vlans")
        sw_bad = sum(
            1
            for sid, sw in new.switches.items()
            if any(getattr(sw, c) != getattr(old.switches[sid], c) for c in sw_cols)
        )
        return {
            "host_mismatches": host_bad,
            "switch_mismatches": sw_bad,
            "load_s": round(load_s, 1),
        }


# --------------------------------------------------------------------------- 1M VM rows


def top_up_vm_rows(db: Database, wl: Workload, total: int) -> dict[str, Any]:
    """Insert bare VM rows (no ports, counters untouched) until the store holds ``total``."""
    started = time.perf_counter()
    with db.read_session() as s:
        have = s.scalar(select(func.count()).select_from(Vm)) or 0
        host_ids = list(s.scalars(select(Host.id).order_by(Host.name)))
    now, d = utcnow(), wl.demand
    added = 0
    while have + added < total:
        n = min(MILLION_CHUNK, total - have - added)
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant_id": wl.tenants[i % len(wl.tenants)],
                "name": f"x{added + i}",
                "flavor_id": wl.flavor_id,
                "image": "debian-12",
                "host_id": host_ids[(added + i) % len(host_ids)],
                "state": "active",
                "vcpus": d.vcpus,
                "ram_mb": d.ram_mb,
                "disk_gb": d.disk_gb,
                "bandwidth_mbps": d.bandwidth_mbps,
                "placement": {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        with db.write_session() as s:
            s.execute(insert(Vm), rows)
        added += n
    return {"had": have, "added": added, "seconds": round(time.perf_counter() - started, 1)}


# --------------------------------------------------------------------------- a real controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(workdir: Path, database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """``fuyun serve`` on the store; yields (process, base URL, operator token)."""
    port = free_port()
    env = {
        **os.environ,
        "FUYUN_DATABASE_URL": database_url,
        "XDG_CONFIG_HOME": str(workdir),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "300",  # rich must not wrap the token line
    }
    out = workdir / "serve.out"
    with out.open("wb") as sink, (workdir / "serve.err").open("wb") as err:
        proc = subprocess.Popen(
            [str(FUYUN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=err,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        token = ""
        with httpx.Client(base_url=base, timeout=2.0, trust_env=False) as client:
            while True:
                if proc.poll() is not None:
                    tail = (workdir / "serve.err").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"fuyun serve exited with {proc.returncode}:\n{tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError("fuyun serve did not become healthy")
                if not token and (match := TOKEN_RE.search(out.read_text(errors="replace"))):
                    token = match.group(1)
                with contextlib.suppress(httpx.TransportError):
                    if token and client.get("/api/v1/health").status_code == 200:
                        break
                time.sleep(POLL_S)
        yield proc, base, token
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def http_tenant(wl: Workload, modules: int = 8) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """A fresh tenant with a /16 network in a few switched modules, for the HTTP run.

    Fresh, because ``fuyun serve`` runs as shipped: the policy fan-out of a tenant whose
    members were written in bulk (no device state yet) would recompile them all first.
    """
    tenant = tenants.create_tenant(
        wl.rt.db,
        SYSTEM,
        name="bench-http",
        limits={k: BIG for k in ("vms", "vcpus", "ram_mb", "ips", "bandwidth_mbps")},
    )
    c = wl.cluster
    switched = sorted(m.name for m in c.modules.values() if m.switched)[:modules]
    return [(tenant.id, wl._open(tenant.id, name, f"m-{name}", 16)) for name in switched]


def controller_check(
    workdir: Path, db: Database, nets: list[tuple[uuid.UUID, uuid.UUID]], http_vms: int
) -> dict[str, Any]:
    """Restart a real controller on the store; its memory, and placements over HTTP."""
    with db.read_session() as s:
        vm_rows = s.scalar(select(func.count()).select_from(Vm)) or 0
        host_rows = s.scalar(select(func.count()).select_from(Host)) or 0
    started = time.perf_counter()
    result: dict[str, Any] = {"vm_rows": vm_rows, "hosts": host_rows}
    with serve(workdir, db.url) as (proc, base, token):
        result["ready_s"] = round(time.perf_counter() - started, 1)
        result["after_start"] = proc_memory(proc.pid)
        run = Run("HTTP POST /api/v1/vms", load=[load1()])
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600, trust_env=False) as client:
            i = 0
            first = True
            while run.vms < http_vms or first:
                tenant, net = nets[i % len(nets)]
                i += 1
                count = 1 if first else min(BATCH, max(1, http_vms - run.vms))
                body = {
                    "name": f"h{i}",
                    "flavor": FLAVOR,
                    "count": count,
                    "tenant_id": str(tenant),
                    "networks": [str(net)],
                }
                t0, c0 = time.perf_counter(), _cpu_of(proc.pid)
                resp = client.post("/api/v1/vms", json=body)
                dt = time.perf_counter() - t0
                if first:  # the first request loads the 100,000-host snapshot: kept apart
                    result["first_request_s"] = round(dt, 2)
                    result["after_snapshot"] = proc_memory(proc.pid)
                    first = False
                    if resp.status_code == 201:
                        result["first_request_vms"] = len(resp.json()["items"])
                    if http_vms <= 0:
                        break
                    continue
                run.requests += 1
                run.seconds += dt
                run.cpu_s += _cpu_of(proc.pid) - c0
                run.request_ms.append(dt * 1000)
                if resp.status_code == 201:
                    run.vms += len(resp.json()["items"])
                else:
                    run.failed_requests += 1
                    run.failures[f"{resp.status_code} {resp.text[:80]}"] += 1
                    if run.failed_requests > 5:
                        break
        run.load.append(load1())
        result["after_http"] = proc_memory(proc.pid)
        result["http"] = run.summary()
    return result


def _cpu_of(pid: int) -> float:
    """User+system CPU seconds of one process (the server: no children doing the work)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


# --------------------------------------------------------------------------- the peer


def peer_params(hosts: int) -> GeneratorParams:
    """A fabric of ``hosts`` hosts: switched modules of <= 2,000 hosts, 12-core 96 GiB hosts
    (Placement's peer inventory is 12 VCPU x 4.0, 96 GiB), density 1p10v."""
    modules = max(1, hosts // 2000)
    tors = max(1, hosts // (modules * 40))
    return GeneratorParams(
        name=f"peer-{hosts}",
        sites=1,
        modules_per_site=modules,
        tors_per_module=(tors, tors),
        hosts_per_tor=(40, 40),
        routed_share=0.0,
        server_models=(("std-2010-10g", 1.0),),
        density=(10, 10),
    )


def fuyun_at(hosts: int, vms_per_run: int, workdir: Path) -> list[dict[str, Any]]:
    """fuyun on a ``hosts``-host fabric: per VM (1 and 4 clients, with and without NIC), batch."""
    url = f"sqlite:///{workdir / f'peer-{hosts}.db'}"
    db = Database(url)
    settings = Settings(database_url=url)
    upgrade(db.engine)
    with db.write_session() as s:
        load_into_store(s, generate(peer_params(hosts)))
    driver = FakeComputeDriver()
    bootstrap(db, settings, driver, fabric="default")  # finds the fabric in place
    rt = Runtime(db, settings, driver)
    limits = {k: BIG for k in ("vms", "vcpus", "ram_mb", "ips", "bandwidth_mbps")}
    tenant = tenants.create_tenant(db, SYSTEM, name="peer", limits=limits)
    ctx = networks.Networking(db=db, settings=settings)
    cluster = rt.placement.scheduler().cluster
    nets = [
        networks.create_network(
            ctx,
            SYSTEM,
            networks.NetworkRequest(
                name=f"n-{info.name}", prefix_len=16, module=info.name, tenant_id=tenant.id
            ),
        ).id
        for info in sorted(cluster.modules.values(), key=lambda m: m.name)
    ]
    seq = iter(range(10**9))
    lock = threading.Lock()

    def one(count: int, nic: bool) -> int:
        with lock:
            i = next(seq)
        req = vms.VmRequest(
            name=f"p{i}",
            flavor=FLAVOR,
            count=count,
            tenant_id=tenant.id,
            networks=(str(nets[i % len(nets)]),) if nic else (),
        )
        return len(vms.create_vms(rt, SYSTEM, req).vms)

    rows = []
    for label, clients, count, nic, n in (
        ("fuyun per VM, 1 NIC", 1, 1, True, vms_per_run),
        ("fuyun per VM, 1 NIC", 4, 1, True, vms_per_run),
        ("fuyun per VM, no NIC", 1, 1, False, vms_per_run),
        ("fuyun batch 500, 1 NIC", 1, BATCH, True, max(vms_per_run, 1000)),
    ):
        for _ in range(3):  # warm-up: imports, statement caches, snapshot
            one(1, nic)
        run = _threaded(label, clients, n, functools.partial(one, count, nic), min(count, n))
        rows.append({"hosts": hosts, "clients": clients, **run.summary()})
    db.dispose()
    return rows


def _threaded(label: str, clients: int, n: int, call: Callable[[], int], per: int) -> Run:
    """``clients`` threads calling ``call`` (which places ``per`` VMs) until ``n`` are placed."""
    run = Run(label, load=[load1()])
    tickets = iter(range(0, n, per))
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)

    def worker() -> None:
        gate.wait()
        while True:
            with lock:
                if next(tickets, None) is None:
                    return
            t0 = time.perf_counter()
            placed = call()
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                run.vms += placed
                run.requests += 1
                run.request_ms.append(dt)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    c0 = time.process_time()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    run.seconds = time.perf_counter() - t0
    run.cpu_s = time.process_time() - c0
    run.load.append(load1())
    return run


def placement_at(hosts: int, vms_per_run: int) -> list[dict[str, Any]]:
    """OpenStack Placement with Nova's per-VM loop, 1 and 4 clients."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peers.placement import ensure_placement, reset_allocations, run_nova_loop

    rows = []
    with ensure_placement(hosts=hosts) as peer:
        say(f"  placement {peer.version} with {hosts} hosts ready in {peer.setup_seconds} s")
        with peer.client() as client:  # warm every worker, as a long-running service is
            for _ in range(peer.workers * 4):
                client.get(
                    "/allocation_candidates",
                    params={"resources": "VCPU:1,MEMORY_MB:2048,DISK_GB:20", "limit": "1000"},
                ).raise_for_status()
        for clients in (1, 4):
            reset_allocations(peer)
            r = run_nova_loop(peer, vms_per_run, clients)
            cpu = r["server_cpu_ms_per_placement"] + r["client_cpu_ms_per_placement"]
            rows.append(
                {
                    "hosts": hosts,
                    "clients": clients,
                    "label": "Placement (Nova loop)",
                    "vms": r["placed"],
                    "seconds": r["seconds"],
                    "vms_per_s": r["placements_per_s"],
                    "request_p50_ms": r["p50_ms"],
                    "request_p99_ms": r["p99_ms"],
                    "cpu_ms_per_vm": round(cpu, 2),
                    "conflicts_retried": r["conflicts_retried"],
                    "failures": r["failures"],
                    "load1": r["loadavg_1m"],
                    "errors": r["errors"],
                }
            )
        reset_allocations(peer)
    return rows


# --------------------------------------------------------------------------- report


def print_tables(res: dict[str, Any]) -> None:
    say("\n" + "=" * 100)
    if "bootstrap_s" in res:
        say(
            f"fabric {res['fabric']}: {res['hosts']:,} hosts, {res['slots']:,} VM slots "
            f"(s1.small); bootstrap {res['bootstrap_s']:.1f} s, snapshot load "
            f"{res['snapshot_s']:.1f} s; networks: {res['networks']}"
        )
    runs = ([res["shipped"]] if "shipped" in res else []) + res.get("runs", [])
    if runs:
        say(
            f"\n{'run':<58} {'VMs':>7} {'VM/s':>7} {'CPU ms/VM':>9} {'req p50':>8} "
            f"{'req p99':>8} {'dec p50':>8} {'dec p99':>8} {'dec max':>8} {'fail':>4} "
            f"{'load1':>11}"
        )
        for r in runs:
            say(
                f"{r['label']:<58} {r['vms']:>7,} {r['vms_per_s']:>7,.1f} "
                f"{r['cpu_ms_per_vm']:>9.2f} {r['request_p50_ms']:>6.0f}ms "
                f"{r['request_p99_ms']:>6.0f}ms {r['decision_p50_ms']:>6.2f}ms "
                f"{r['decision_p99_ms']:>6.2f}ms {r['decision_max_ms']:>6.1f}ms "
                f"{r['failed_requests']:>4} {r['load1']!s:>11}"
            )
        for r in runs:
            kinds = ", ".join(
                f"{k} modules {v['vms']:,} VMs at {v['vms_per_s']}/s"
                for k, v in r["by_kind"].items()
            )
            say(
                f"  {r['label']}: decision CPU p50 {r['decision_cpu_p50_ms']} ms p99 "
                f"{r['decision_cpu_p99_ms']} ms; {kinds}; {r['gc2_collections']} full GCs, "
                f"{r['gc2_total_s']} s in all, longest {r['gc2_max_ms']} ms"
            )
            say(
                "    rate as the run went on (VMs placed: VMs/s, CPU ms/VM): "
                + ", ".join(
                    f"{w['vms']:,}: {w['window_vms_per_s']}/s {w['window_cpu_ms_per_vm']}"
                    for w in r["curve"][:: max(1, len(r["curve"]) // 10)]
                )
            )
        if "shipped" in res:
            s = res["shipped"]
            say(
                f"  A0 left {s['device_states']:,} device states holding "
                f"{mib(s['device_ir_bytes'])} of compiled policy (IR JSON)"
            )
        for name, sample in res.get("isolated", {}).items():
            say(
                f"isolated decisions @ {name}: n={sample['n']}, p50 {sample['p50_ms']:.3f} ms, "
                f"p99 {sample['p99_ms']:.3f} ms, max {sample['max_ms']:.2f} ms; CPU p50 "
                f"{sample['cpu_p50_ms']:.3f} ms p99 {sample['cpu_p99_ms']:.3f} ms; "
                + "; ".join(
                    f"{k} p50 {v['p50_ms']:.3f} p99 {v['p99_ms']:.3f} (n={v['n']})"
                    for k, v in sample["by_kind"].items()
                )
            )
        if "fill" in res:
            f = res["fill"]
            say(
                f"fill to {res['fill_target']:,} VMs: {f['vms']:,} VMs decided in memory in "
                f"{f['decide_s']} s, written in {f['write_s']} s; decisions p50 "
                f"{f['decision_p50_ms']:.3f} ms p99 {f['decision_p99_ms']:.3f} ms; "
                f"reload check {res['reload_check']}"
            )
    if "memory" in res:
        say("\nmemory (this process): " + ", ".join(
            f"{k} RSS {mib(v.get('VmRSS', 0))} (peak {mib(v.get('VmHWM', 0))})"
            for k, v in res["memory"].items()
        ))  # fmt: skip
    if "controller" in res:
        c = res["controller"]
        say(
            f"controller restart (fuyun serve) on {c['vm_rows']:,} VM rows + {c['hosts']:,} "
            f"hosts: healthy after {c['ready_s']} s, RSS {mib(c['after_start'].get('VmRSS', 0))}"
            f"; first request (snapshot load) {c.get('first_request_s')} s, RSS "
            f"{mib(c.get('after_snapshot', {}).get('VmRSS', 0))}; after HTTP run RSS "
            f"{mib(c['after_http'].get('VmRSS', 0))}, peak {mib(c['after_http'].get('VmHWM', 0))}"
        )
        h = c["http"]
        say(
            f"  over HTTP: {h['vms']:,} VMs at {h['vms_per_s']:,.1f}/s, server CPU "
            f"{h['cpu_ms_per_vm']:.2f} ms/VM, request p50 {h['request_p50_ms']:.0f} ms "
            f"p99 {h['request_p99_ms']:.0f} ms, failed {h['failed_requests']}"
        )
    if res.get("peer"):
        say(
            f"\n{'hosts':>6} {'system':<26} {'clients':>7} {'VMs':>6} {'VM/s':>8} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'CPU ms/VM':>9} {'load1':>12}"
        )
        for r in res["peer"]:
            say(
                f"{r['hosts']:>6} {r['label']:<26} {r['clients']:>7} {r['vms']:>6} "
                f"{r['vms_per_s']:>8,.1f} {r['request_p50_ms']:>8.1f} {r['request_p99_ms']:>8.1f} "
                f"{r['cpu_ms_per_vm']:>9.2f} {r['load1']!s:>12}"
            )
        for line in res.get("ratios", []):
            say(line)


def ratios(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    theirs = {(r["hosts"], r["clients"]): r for r in rows if r["label"].startswith("Placement")}
    for r in rows:
        if r["label"].startswith("Placement"):
            continue
        peer = theirs.get((r["hosts"], r["clients"])) or theirs.get((r["hosts"], 1))
        if not peer or not peer["vms_per_s"]:
            continue
        out.append(
            f"ours/theirs @ {r['hosts']:,} hosts, {r['clients']} client(s): {r['label']} "
            f"{r['vms_per_s']:,.1f}/s vs Placement {peer['clients']} client(s) "
            f"{peer['vms_per_s']:,.1f}/s = {r['vms_per_s'] / peer['vms_per_s']:.2f}x "
            f"(CPU per VM theirs/ours {peer['cpu_ms_per_vm'] / r['cpu_ms_per_vm']:.2f})"
        )
    return out


# --------------------------------------------------------------------------- main


def shipped(args: argparse.Namespace, workdir: Path, res: dict[str, Any]) -> None:
    """Phase A as shipped (policy fan-out included), on its own store, within a time budget."""
    url = f"sqlite:///{workdir / 'shipped.db'}"
    db = Database(url)
    settings = Settings(database_url=url)
    driver = FakeComputeDriver()
    bootstrap(db, settings, driver, fabric=args.fabric)
    rt = Runtime(db, settings, driver)
    rt.placement.scheduler()
    wl = Workload(rt, prefix_len=args.prefix_len, routed_prefix_len=23)
    wl.window_vms = args.window_vms
    wl.setup(TENANTS)
    label = f"A0: as shipped, from empty (budget {args.shipped_budget:.0f} s)"
    say(f"phase A0: as shipped, up to {args.vms:,} VMs or {args.shipped_budget:.0f} s")
    run = wl.run_live(args.vms, label, budget_s=args.shipped_budget)
    summary = run.summary()
    with db.read_session() as s:
        row = s.execute(
            text("SELECT COUNT(*), COALESCE(SUM(LENGTH(ir)), 0) FROM device_states")
        ).one()
    summary["device_states"], summary["device_ir_bytes"] = int(row[0]), int(row[1])
    res["shipped"] = summary
    say(json.dumps({k: v for k, v in summary.items() if k != "curve"}))
    db.dispose()
    for f in workdir.glob("shipped.db*"):
        f.unlink()


def scale(args: argparse.Namespace, workdir: Path, res: dict[str, Any]) -> None:
    url = f"sqlite:///{workdir / 'fuyun.db'}"
    db = Database(url)
    settings = Settings(database_url=url)
    driver = FakeComputeDriver()
    memory: dict[str, dict[str, int]] = {"start": proc_memory()}
    res["memory"] = memory
    started = time.perf_counter()
    boot = bootstrap(db, settings, driver, fabric=args.fabric)
    res["bootstrap_s"] = time.perf_counter() - started
    res["fabric"], res["hosts"] = args.fabric, boot.hosts
    gc.collect()
    memory["after bootstrap"] = proc_memory()
    rt = Runtime(db, settings, driver)
    started = time.perf_counter()
    rt.placement.scheduler()
    res["snapshot_s"] = time.perf_counter() - started
    memory["after snapshot"] = proc_memory()
    say(f"bootstrap {res['bootstrap_s']:.1f} s ({boot.hosts:,} hosts), "
        f"snapshot {res['snapshot_s']:.1f} s")  # fmt: skip
    # What ``fuyun serve`` does once its snapshot is loaded: the phases run under the
    # collector settings a controller has.
    settled = settle_after_startup()
    res["gc_settled"] = {"frozen": settled.frozen, "thresholds": list(settled.thresholds)}
    say(f"start-up step: {settled.frozen:,} objects frozen, thresholds {settled.thresholds}")

    wl = Workload(rt, prefix_len=args.prefix_len, routed_prefix_len=23)
    wl.setup(TENANTS)
    res["slots"] = sum(wl.capacity.values())
    rng = random.Random(7)
    isolated: dict[str, dict[str, Any]] = {}
    res["isolated"] = isolated

    def sample(name: str) -> None:
        if args.decisions <= 0:
            return
        triples = wl.sample_decisions(args.decisions, rng)
        ms = [x for _, x, _ in triples]
        cpu = [c for _, _, c in triples]
        isolated[name] = {
            "n": len(ms),
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "max_ms": max(ms),
            "cpu_p50_ms": percentile(cpu, 50),
            "cpu_p99_ms": percentile(cpu, 99),
            "by_kind": {
                k: {"n": len(sub), "p50_ms": percentile(sub, 50), "p99_ms": percentile(sub, 99)}
                for k in ("switched", "routed")
                if (sub := [x for kind, x, _ in triples if kind == k])
            },
        }

    sample("empty")
    runs: list[dict[str, Any]] = []
    res["runs"] = runs
    stub = not args.with_policy
    tag = ", policy fan-out stubbed" if stub else ""
    say(f"phase A: {args.vms:,} VMs from empty{tag}")
    with policy_fan_out_stubbed(stub):
        a = wl.run_live(args.vms, f"A: {args.vms:,} from empty{tag}", budget_s=args.budget)
    runs.append(a.summary())
    res["networks"] = dict(wl.net_count)
    gc.collect()
    memory[f"after {a.vms:,} VMs"] = proc_memory()
    say(json.dumps(a.summary()))

    target = int(args.fill * res["slots"])
    res["fill_target"] = target
    if not args.skip_fill and wl.total_vms() < target:
        say(f"fill to {args.fill:.0%} of {res['slots']:,} slots = {target:,} VMs")
        fill_ms: list[float] = []
        fill = wl.fill(target, fill_ms)
        fill["decision_p50_ms"] = percentile(fill_ms, 50)
        fill["decision_p99_ms"] = percentile(fill_ms, 99)
        res["fill"] = fill
        del fill_ms
        res["reload_check"] = wl.compare_snapshot()
        say(f"  reloaded snapshot vs in-memory: {res['reload_check']}")
    filled = 100 * wl.fill_fraction()
    sample(f"{filled:.0f}% full")
    label = f"B: {args.more:,} more @ {filled:.0f}% full{tag}"
    say(f"phase B: {args.more:,} VMs into a {filled:.1f}%-full fabric{tag}")
    with policy_fan_out_stubbed(stub):
        b = wl.run_live(args.more, label, budget_s=args.budget)
    runs.append(b.summary())
    gc.collect()
    memory[f"after phase B ({wl.total_vms():,} VMs)"] = proc_memory()
    say(json.dumps(b.summary()))
    res["networks"] = dict(wl.net_count)

    if args.million:
        say("topping the store up to 1,000,000 VM rows")
        res["million"] = top_up_vm_rows(db, wl, 1_000_000)
        say(f"  {res['million']}")
    if args.http_vms >= 0:
        nets = http_tenant(wl)
        db.dispose()
        say("restarting a real controller (fuyun serve) on the store")
        res["controller"] = controller_check(workdir, db, nets, args.http_vms)
        say(f"  {json.dumps(res['controller'])}")
    db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fabric", default="tencent-2010", choices=sorted(PRESETS))
    parser.add_argument("--vms", type=int, default=100_000, help="phase A: VMs from empty")
    parser.add_argument("--more", type=int, default=10_000, help="phase B: VMs after the fill")
    parser.add_argument("--fill", type=float, default=0.70, help="fill to this share of slots")
    parser.add_argument("--skip-fill", action="store_true")
    parser.add_argument(
        "--budget", type=float, default=0, help="seconds of placing per live phase (0: none)"
    )
    parser.add_argument(
        "--shipped-budget",
        type=float,
        default=600,
        help="seconds for phase A0, as shipped with the policy fan-out (0: skip A0)",
    )
    parser.add_argument(
        "--with-policy", action="store_true", help="phases A and B as shipped too (no stub)"
    )
    parser.add_argument("--only-shipped", action="store_true", help="phase A0 only")
    parser.add_argument(
        "--window-vms",
        type=int,
        default=0,
        help="phase A0's rate windows by this many VMs (0: 20 requests or 60 s)",
    )
    parser.add_argument("--prefix-len", type=int, default=16, help="switched networks' prefix")
    parser.add_argument("--decisions", type=int, default=2000, help="isolated decision samples")
    parser.add_argument(
        "--http-vms", type=int, default=2000, help="VMs placed over HTTP after a restart (-1: skip)"
    )
    parser.add_argument("--million", action="store_true", help="1,000,000 VM rows for memory")
    parser.add_argument("--skip-scale", action="store_true", help="only the peer comparison")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--peer-big", action="store_true", help="also at 10,000 hosts")
    parser.add_argument("--peer-vms", type=int, default=200, help="VMs per per-VM peer run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="fuyun-bench-placement-"))
    res: dict[str, Any] = {
        "argv": sys.argv[1:],
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "code": code_version(),
    }
    say(f"work directory {workdir}; code {json.dumps(res['code'])}")
    # SIGTERM unwinds like Ctrl-C, so the store and the servers are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if not args.skip_scale:
            if args.shipped_budget > 0:
                shipped(args, workdir, res)
            if not args.only_shipped:
                scale(args, workdir, res)
        if not args.skip_peer:
            rows: list[dict[str, Any]] = []
            for hosts in (1000, 10000) if args.peer_big else (1000,):
                say(f"peer comparison at {hosts:,} hosts")
                rows += fuyun_at(hosts, args.peer_vms, workdir)
                rows += placement_at(hosts, args.peer_vms)
                res["peer"] = rows
            res["ratios"] = ratios(rows)
    finally:
        res["memory_final"] = proc_memory()
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=str))
        if args.keep:
            say(f"store kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_tables(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
