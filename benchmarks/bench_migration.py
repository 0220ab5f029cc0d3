"""Control-plane time of live migration: evacuate a host of 10 VMs, drain a ToR of 400.

Claim backed here (issue 6): on the ``default`` fabric (2 sites x 4 modules x 20 ToRs x
40 hosts = 6,400 hosts) with the fake compute driver and the sim network driver, how long
the control plane takes per migration and in total, for

* ``evacuate``: one host running ``--host-vms`` VMs (10) is evacuated;
* ``drain``: one ToR whose 40 hosts run ``--tor-vms`` VMs (400) is drained.

Each move is the full network-aware transaction (``vm.migrate``: reserve, extend the span
and recompile policy at the destination, converge it through the network driver, migrate,
cut over, verify, clean up the source, release), with the batch limits given. The fake
hypervisor takes no time, so the figures are the control plane's own: planning (scheduler
+ fabric checks), the store (SQLite, WAL) and policy compilation.

Baseline in the same run: a compute-only move of the same VMs (the driver's migrate and
the VM's host row updated, nothing else) — what a controller that ignores the network
does. The ratio is the price of moving VLAN, policy and switch tables with the VM.

The ``default`` fabric's densest hosts are 1p9v; the benchmark raises the drained ToR's
40 hosts (and the evacuated host) to 1p10v, within the fabric's documented 1p4v-1p10v
range, so that 400 VMs fit below one ToR. The VMs are ``s1.small`` on one network of the
ToR's switched-clos module.

Run (from the checkout)::

    .venv/bin/python benchmarks/bench_migration.py [--tor-vms 400] [--host-vms 10] \\
        [--workers 4] [--per-host 2] [--per-tor 8] [--fabric default]

Results are in docs/benchmarks.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("FUYUN_ARGON2_PROFILE", "fast")

from sqlalchemy import select, update

from fuyun.config import Settings
from fuyun.domain.enums import EnforcementPoint, FabricKind
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.drivers.network.sim import SimNetworkDriver
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.migration import batch
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Host, Module, Switch, Vm, Workflow, WorkflowStep


def pick_tor(db: Database, need: int) -> tuple[str, str, list[str]]:
    """A ToR of a switched-clos, vswitch module with the most hosts; its module and hosts."""
    with db.read_session() as s:
        rows = s.execute(
            select(Switch.name, Module.name, Host.name)
            .join(Host, Host.tor_id == Switch.id)
            .join(Module, Module.id == Switch.module_id)
            .where(
                Module.fabric_kind == FabricKind.SWITCHED_CLOS.value,
                Module.enforcement_point == EnforcementPoint.VSWITCH.value,
            )
            .order_by(Switch.name, Host.name)
        ).all()
    by_tor: dict[tuple[str, str], list[str]] = {}
    for tor, module, host in rows:
        by_tor.setdefault((tor, module), []).append(host)
    (tor, module), hosts = max(by_tor.items(), key=lambda kv: (len(kv[1]), kv[0][0]))
    if len(hosts) * 10 < need:
        raise SystemExit(f"ToR {tor} has {len(hosts)} hosts: not enough for {need} VMs at 1p10v")
    return tor, module, hosts


def densify(db: Database, hosts: list[str]) -> None:
    with db.write_session() as s:
        s.execute(update(Host).where(Host.name.in_(hosts)).values(max_vms=10))


def fill(rt: Runtime, tenant: uuid.UUID, net: str, hosts: list[str], total: int, tag: str) -> None:
    left, i = total, 0
    while left > 0:
        count = min(10, left)
        vms.create_vms(
            rt,
            SYSTEM,
            vms.VmRequest(
                name=f"{tag}{i}",
                flavor="s1.small",
                count=count,
                tenant_id=tenant,
                networks=(net,),
                host=hosts[i],
            ),
        )
        left -= count
        i += 1


def move_times(db: Database, batch_id: uuid.UUID) -> list[float]:
    """Per move: first step started to last step finished, from the workflow's own rows."""
    row_ids = []
    with db.read_session() as s:
        b = s.get(batch.MigrationBatch, batch_id)
        assert b is not None
        row_ids = [uuid.UUID(i["workflow_id"]) for i in b.items if i.get("workflow_id")]
        out = []
        for wf in row_ids:
            steps = list(s.scalars(select(WorkflowStep).where(WorkflowStep.workflow_id == wf)))
            start = min(x.started_at for x in steps if x.started_at)
            end = max(x.finished_at for x in steps if x.finished_at)
            out.append((end - start).total_seconds())
    return out


def run_batch(rt: Runtime, kind: str, target: str, limits: batch.Limits) -> dict[str, float]:
    started = time.perf_counter()
    batch_id = batch.start(rt, SYSTEM, kind, target, limits=limits, background=False)
    total = time.perf_counter() - started
    row = batch.get(rt, SYSTEM, batch_id)
    per = move_times(rt.db, batch_id)
    return {
        "vms": row.total,
        "moved": row.moved,
        "failed": row.failed,
        "total_s": total,
        "per_move_ms_wall": 1000 * total / max(row.moved, 1),
        "move_p50_ms": 1000 * statistics.median(per) if per else 0.0,
        "move_p99_ms": 1000 * sorted(per)[max(0, int(len(per) * 0.99) - 1)] if per else 0.0,
    }


def compute_only(rt: Runtime, host: str, others: list[str]) -> dict[str, float]:
    """The baseline: the driver moves each VM and its host row changes; nothing else."""
    with rt.db.read_session() as s:
        src = s.scalar(select(Host).where(Host.name == host))
        assert src is not None
        ids = list(s.scalars(select(Vm.id).where(Vm.host_id == src.id)))
        dest_ids = dict(s.execute(select(Host.name, Host.id).where(Host.name.in_(others))).all())
    started = time.perf_counter()
    for i, vm_id in enumerate(ids):
        dest = others[i % len(others)]
        rt.driver.migrate(vm_id, host, dest)
        with rt.db.write_session() as s:
            s.execute(update(Vm).where(Vm.id == vm_id).values(host_id=dest_ids[dest]))
    total = time.perf_counter() - started
    # Put them back, so the network-aware run that follows starts from the same place.
    for i, vm_id in enumerate(ids):
        rt.driver.migrate(vm_id, others[i % len(others)], host)
        with rt.db.write_session() as s:
            s.execute(update(Vm).where(Vm.id == vm_id).values(host_id=src.id))
    return {"vms": len(ids), "total_s": total, "per_move_ms_wall": 1000 * total / max(len(ids), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fabric", default="default")
    parser.add_argument("--host-vms", type=int, default=10)
    parser.add_argument("--tor-vms", type=int, default=400)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--per-tor", type=int, default=8)
    parser.add_argument("--per-site", type=int, default=32)
    args = parser.parse_args()
    limits = batch.Limits(args.per_host, args.per_tor, args.per_site, args.workers)

    workdir = Path(tempfile.mkdtemp(prefix="fuyun-bench-mig-"))
    db = Database(f"sqlite:///{workdir / 'fuyun.db'}")
    settings = Settings(database_url=db.url)
    rt = Runtime(db, settings, FakeComputeDriver(delay_s=0), network=SimNetworkDriver())
    t0 = time.perf_counter()
    bootstrap(db, settings, rt.driver, fabric=args.fabric, runtime=rt)
    print(f"store: {args.fabric} fabric loaded in {time.perf_counter() - t0:.1f} s ({workdir})")
    tor, module, hosts = pick_tor(db, args.tor_vms)
    with db.read_session() as s:
        spare = list(
            s.scalars(
                select(Host.name)
                .join(Module, Module.id == Host.module_id)
                .where(Module.name == module, Host.name.not_in(hosts))
                .order_by(Host.name)
            )
        )
    evac_host = spare[0]
    densify(db, [*hosts, evac_host])
    rt.placement.invalidate()
    tenant = tenants.create_tenant(
        db,
        SYSTEM,
        name="bench",
        limits={"vms": 10_000, "vcpus": 100_000, "ram_mb": 10**8, "ips": 10**5,
                "bandwidth_mbps": 10**7},
    )  # fmt: skip
    net = networks.create_network(
        networks.Networking(db=db, settings=settings),
        SYSTEM,
        networks.NetworkRequest(
            name="bench", cidr="10.64.0.0/20", tenant_id=tenant.id, module=module
        ),
    )
    fill(rt, tenant.id, str(net.id), [evac_host], args.host_vms, "e")
    print(f"ToR {tor} of {module} ({len(hosts)} hosts); evacuated host {evac_host}")
    print("machine: 2 cores shared with other work; SQLite; fake compute, sim network")
    print()

    # The evacuated host is filled first, so the drain cannot land VMs on it; the drain
    # puts the ToR's hosts into maintenance, so the evacuation cannot land VMs there.
    t0 = time.perf_counter()
    fill(rt, tenant.id, str(net.id), hosts, args.tor_vms, "t")
    print(f"filled ToR {tor} with {args.tor_vms} VMs in {time.perf_counter() - t0:.1f} s")
    base = compute_only(rt, evac_host, spare[1:5])

    drain = run_batch(rt, "drain-tor", tor, limits)
    print(f"drain ToR ({drain['vms']} VMs, limits {limits})")
    print(
        f"  network-aware: {drain['moved']} moved, {drain['failed']} failed in "
        f"{drain['total_s']:.1f} s; {drain['per_move_ms_wall']:.0f} ms per move (wall), "
        f"one move p50 {drain['move_p50_ms']:.0f} ms, p99 {drain['move_p99_ms']:.0f} ms"
    )
    print()
    evac = run_batch(rt, "evacuate-host", evac_host, limits)
    print(f"evacuate host ({evac['vms']} VMs, limits {limits})")
    print(
        f"  network-aware: {evac['moved']} moved, {evac['failed']} failed in "
        f"{evac['total_s']:.2f} s; {evac['per_move_ms_wall']:.0f} ms per move (wall), "
        f"one move p50 {evac['move_p50_ms']:.0f} ms, p99 {evac['move_p99_ms']:.0f} ms"
    )
    print(
        f"  compute-only baseline (same {base['vms']:.0f} VMs, before): {base['total_s']:.3f} s;"
        f" {base['per_move_ms_wall']:.1f} ms per move; network-aware / compute-only "
        f"{evac['per_move_ms_wall'] / max(base['per_move_ms_wall'], 1e-6):.0f}x"
    )
    with db.read_session() as s:
        runs = s.scalar(
            select(Workflow.id).where(Workflow.kind == "vm.migrate", Workflow.state != "succeeded")
        )
    print(f"  every move that started succeeded: {runs is None}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
