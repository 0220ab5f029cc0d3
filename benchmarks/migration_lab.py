"""The ``lab`` mode of bench_migration_qemu.py: a move through the API and the workflow.

The tests' lab world (tests/support/labworld.py): private Open vSwitch with 2 ToRs
x 2 hosts, the store, the API in process and the host agent; hosts A and B (under
different ToRs) run the ``qemu`` driver in the lab's switch namespace, the other
hosts namespace VMs. Per size, a guest of that many MiB is created through the API
on A, a namespace VM of the same network on a third host pings it every
``--interval-ms``, and the guest is moved with ``POST /vms/{id}/migrate``, back and
forth between A and B ``--repeat`` times. Printed per size (medians, and the worst
run): the API call to done; the compute move (the workflow's ``migrate`` step:
destination QEMU started, QEMU's migration, announce, source ended); the control
plane around it (everything else: reserve, extend, converge the destination before,
cut-over, verify, cleanup, release after); QEMU's total and downtime; the prober's
longest gap, the gap beyond downtime and probes lost; and where the gaps fall —
the longest gap that starts after the driver returned is the control plane's own
(its cut-over or cleanup touching forwarding), if any. Sizes below the kernel's
floor run QEMU with no guest OS: no probes, the timings only.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tests.support.guest import Guest, wait_ready
from tests.support.labworld import LabWorld, PerHostCompute, lab_fabric, lab_world, wait_for
from tests.support.qemu_lab import Prober

from fuyun.drivers.compute.qemu import QemuComputeDriver
from fuyun.drivers.compute.qemu.process import Instance
from fuyun.store.models import WorkflowStep

TARGET_DOWNTIME_MS = 300.0
GAP_GOAL_MS = 50.0
MIN_BOOT_MB = 80


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _steps(w: LabWorld, workflow_id: str) -> dict[str, tuple[float, float]]:
    with w.db.read_session() as s:
        rows = s.scalars(
            select(WorkflowStep).where(WorkflowStep.workflow_id == uuid.UUID(workflow_id))
        )
        return {
            r.name: (_epoch(r.started_at), _epoch(r.finished_at))
            for r in rows
            if r.started_at and r.finished_at
        }


def _gaps(stamps: tuple[float, ...], floor_s: float) -> list[tuple[float, float]]:
    """(start, length) of every pause between answers longer than ``floor_s``."""
    return [(a, b - a) for a, b in itertools.pairwise(stamps) if b - a > floor_s]


def _where(t: float, steps: dict[str, tuple[float, float]]) -> str:
    for name, (start, end) in steps.items():
        if start <= t <= end:
            return name
    return "after" if t > max(e for _, e in steps.values()) else "between"


def one_move(
    w: LabWorld, vm: Any, prober: Any, to: str, interval_ms: int, booted: bool
) -> dict[str, Any]:
    probes = Prober(w.ns(prober), vm.ip, interval_ms=interval_ms) if booted else None
    if probes is not None:
        time.sleep(0.5)
    t0 = time.monotonic()
    result = w.call("POST", f"/vms/{vm.id}/migrate", json={"to": to})
    api_ms = (time.monotonic() - t0) * 1000
    steps = _steps(w, result["workflow_id"])
    move_start, move_end = steps["migrate"]
    compute_ms = (move_end - move_start) * 1000
    before_ms = (move_start - steps["reserve"][0]) * 1000
    after_ms = (steps["release"][1] - move_end) * 1000
    out: dict[str, Any] = {
        "api_ms": api_ms,
        "compute_ms": compute_ms,
        "control_ms": api_ms - compute_ms,
        "before_ms": before_ms,
        "after_ms": after_ms,
        "total_ms": result["stats"]["total_ms"],
        "downtime_ms": result["stats"]["downtime_ms"],
        "sent": 0,
        "lost": 0,
        "gap_ms": float("nan"),
        "after_gap_ms": 0.0,
        "where": "",
    }
    if probes is None:
        return out
    time.sleep(1.0)
    seen = probes.stop()
    gaps = _gaps(seen.stamps, 5 * interval_ms / 1000)
    late = [g for s, g in gaps if s > move_end]
    longest = sorted(sorted(gaps, key=lambda g: -g[1])[:3])
    out.update(
        sent=seen.sent,
        lost=seen.lost,
        gap_ms=seen.longest_gap_ms,
        after_gap_ms=max(late, default=0.0) * 1000,
        where=", ".join(
            f"{g * 1000:.0f} ms from {_where(s, steps)} to {_where(s + g, steps)}"
            for s, g in longest
        ),
    )
    return out


def lab_mode(args: argparse.Namespace, guest: Guest) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    hosts = sorted(h.name for h in lab_fabric().hosts)
    a, prober_host, b = hosts[0], hosts[1], hosts[2]
    print(f"\n== the vm.migrate workflow on the lab (OVS), through the API: {a} <-> {b} ==")
    with tempfile.TemporaryDirectory(prefix="fyqlab") as root:
        qemu_hosts = frozenset({a, b})
        with lab_world(Path(root), qemu_hosts=qemu_hosts, guest=guest) as w:
            assert w.qemu is not None
            booted_driver = w.qemu
            bare = QemuComputeDriver(replace(w.qemu.config, kernel=None, initrd=None))
            compute = w.client.app.state.ctx.runtime.driver  # type: ignore[attr-defined]
            assert isinstance(compute, PerHostCompute)
            print(f"accelerator: {w.qemu.accelerator.accel} ({w.qemu.accelerator.reason})")
            tenant = w.tenant("bench", "10.51.0.0/24")
            prober = w.vm(tenant, "prober", prober_host)
            w.converge()
            print(
                f"{'MiB':>5} {'runs':>4} {'API ms':>7} {'compute':>8} {'control':>8} "
                f"{'before':>7} {'after':>6} {'total':>6} {'down':>5} {'gap':>5} "
                f"{'beyond':>6} {'late gap':>8} {'lost/sent':>9} {'down/300':>8} {'beyond/50':>9}"
            )
            for size in sizes:
                booted = size >= MIN_BOOT_MB
                compute.qemu = booted_driver if booted else bare
                w.call(
                    "POST",
                    "/flavors",
                    json={"name": f"bench-{size}", "vcpus": 1, "ram_mb": size, "disk_gb": 1},
                )
                vm = w.vm(tenant, f"g{size}", a, flavor=f"bench-{size}")
                w.converge()
                if booted:
                    wait_ready(Instance(booted_driver.config, a, uuid.UUID(vm.id)).serial_log)
                    if wait_for(lambda vm=vm: w.ping(prober, vm), 120, 0.2) is None:
                        raise RuntimeError("the guest does not answer before the move")
                runs, here = [], a
                for _ in range(args.repeat):
                    there = b if here == a else a
                    runs.append(one_move(w, vm, prober, there, args.interval_ms, booted))
                    w.converge()  # the agent applies the source's cleanup
                    here = there
                w.call("DELETE", f"/vms/{vm.id}")
                w.converge()
                _print(size, runs, booted)


def _print(size: int, runs: list[dict[str, Any]], booted: bool) -> None:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    common = (
        f"{size:>5} {len(runs):>4} {med('api_ms'):>7.0f} {med('compute_ms'):>8.0f} "
        f"{med('control_ms'):>8.0f} {med('before_ms'):>7.0f} {med('after_ms'):>6.0f} "
        f"{med('total_ms'):>6.0f} {med('downtime_ms'):>5.0f}"
    )
    if not booted:
        print(f"{common}   (no guest OS: no probes)")
        return
    beyond = statistics.median(max(0.0, r["gap_ms"] - r["downtime_ms"]) for r in runs)
    lost, sent = sum(r["lost"] for r in runs), sum(r["sent"] for r in runs)
    print(
        f"{common} {med('gap_ms'):>5.0f} {beyond:>6.0f} {med('after_gap_ms'):>8.0f} "
        f"{f'{lost}/{sent}':>9} {med('downtime_ms') / TARGET_DOWNTIME_MS:>8.2f} "
        f"{beyond / GAP_GOAL_MS:>9.2f}"
    )
    for i, r in enumerate(runs, start=1):
        print(f"      run {i}: longest gaps {r['where'] or 'none over 5 intervals'}")
