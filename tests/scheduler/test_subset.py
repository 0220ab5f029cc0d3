"""Subset selection: several schedulers with their own snapshots spread their picks."""

from __future__ import annotations

import random

from fuyun.scheduler.framework import Request, Scheduler
from fuyun.scheduler.model import Demand
from fuyun.scheduler.plugins import default_filters, default_weighers
from tests.scheduler.conftest import build

SMALL = Request(demand=Demand(vcpus=2, ram_mb=4096, disk_gb=20, bandwidth_mbps=100))


def test_subset_of_one_always_takes_the_best() -> None:
    sched = Scheduler(build().cluster, default_filters(), default_weighers())
    picks = {sched.select(SMALL).host.name for _ in range(20)}  # type: ignore[union-attr]
    assert len(picks) == 1


def test_a_larger_subset_picks_among_the_best_only() -> None:
    world = build()
    best = Scheduler(world.cluster, default_filters(), default_weighers()).select(SMALL)
    top3 = [name for name, _ in best.top[:3]]
    sched = Scheduler(
        world.cluster, default_filters(), default_weighers(), subset_size=3, rng=random.Random(1)
    )
    picks = [sched.select(SMALL).host.name for _ in range(60)]  # type: ignore[union-attr]
    assert set(picks) <= set(top3)
    assert len(set(picks)) > 1  # spread, not one host for every process
