"""Batch-aware decisions: a routed VLAN's first VM, and the switch filter's per-decision data."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fuyun.scheduler.framework import Request, Scheduler
from fuyun.scheduler.model import Demand, NetworkNeed
from fuyun.scheduler.plugins import default_filters, default_weighers
from fuyun.scheduler.plugins.switch_capacity import SwitchCapacityFilter
from tests.scheduler.conftest import World, build

SMALL = Demand(vcpus=2, ram_mb=4096, disk_gb=20, bandwidth_mbps=100)


def _fresh_routed(world: World) -> NetworkNeed:
    return NetworkNeed(world.ids["B"], world.ids["B"], False, {})


def test_a_batch_opening_a_routed_vlan_starts_where_it_all_fits(world: World) -> None:
    # B-t1 is fuller (pack prefers it) and takes one more VM; B-t2 takes the whole batch.
    for name in ("B-t1-h1", "B-t1-h2"):
        world.cluster.claim(world.ids[name], SMALL, vms=3)  # 1p4v: one slot left each
    sched = Scheduler(world.cluster, default_filters(), default_weighers())
    one = sched.select(Request(SMALL, (_fresh_routed(world),)))
    assert one.host is not None and one.host.tor == world.ids["B-t1"]  # alone: pack
    batch = sched.select(Request(SMALL, (_fresh_routed(world),), batch=5))
    assert batch.host is not None and batch.host.tor == world.ids["B-t2"]
    # No ToR holds the batch: the one holding the most of it.
    world.cluster.claim(world.ids["B-t2-h1"], SMALL, vms=2)
    world.cluster.claim(world.ids["B-t2-h2"], SMALL, vms=3)
    big = sched.select(Request(SMALL, (_fresh_routed(world),), batch=9))
    assert big.host is not None and big.host.tor == world.ids["B-t2"]  # 3 slots beat 2


def test_a_batch_on_a_switched_or_spanned_vlan_decides_as_before(world: World) -> None:
    sched = Scheduler(world.cluster, default_filters(), default_weighers())
    spanned = NetworkNeed(world.ids["B"], world.ids["B"], False, {world.ids["B-t1"]: 2})
    for need in (spanned, NetworkNeed(world.ids["A"], world.ids["A"], True, {})):
        alone = sched.select(Request(SMALL, (need,)))
        batch = sched.select(Request(SMALL, (need,), batch=50))
        assert alone.host is batch.host


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), switched=st.booleans(), ports=st.integers(0, 3))
def test_the_prepared_switch_filter_answers_as_the_plain_one(
    seed: int, switched: bool, ports: int
) -> None:
    world = build()
    rng = random.Random(seed)
    c = world.cluster
    for sw in c.switches.values():  # some tables near or at their limits
        sw.used_mac = rng.randint(sw.mac_capacity - 6, sw.mac_capacity)
        sw.used_arp = rng.randint(sw.arp_capacity - 6, sw.arp_capacity)
        sw.used_vlans = rng.randint(sw.vlan_capacity - 2, sw.vlan_capacity)
    module = "A" if switched else "B"
    tors = [world.ids[f"{module}-t1"], world.ids[f"{module}-t2"]]
    span = {t: ports for t in (tors if switched else tors[:1])} if ports else {}
    req = Request(SMALL, (NetworkNeed(world.ids[module], world.ids[module], switched, span),))
    plain, prepared = SwitchCapacityFilter(), SwitchCapacityFilter()
    prepared.prepare(c, req)
    for host in c.hosts.values():
        if host.module != world.ids[module] or (span and not switched and host.tor not in span):
            continue
        assert prepared.reject(c, req, host) == plain.reject(c, req, host), host.name
    prepared.prepare(c, None)
    assert prepared._state is None


def test_the_next_vm_of_a_batch_walks_the_ranking_with_every_filter(world: World) -> None:
    sched = Scheduler(world.cluster, default_filters(), default_weighers())
    need = NetworkNeed(world.ids["A"], world.ids["A"], True, {world.ids["A-t1"]: 1})
    req = Request(SMALL, (need,))
    first = sched.select(req)
    assert first.host is not None and first.ranked[0] is first.host
    nxt = sched.next_of(req, first)
    assert nxt is not None and nxt.host is first.host  # still the best, still fits
    world.cluster.claim(first.host.id, SMALL, vms=4)  # now at its 1p4v limit
    nxt = sched.next_of(req, first)
    assert nxt is not None and nxt.host is first.ranked[1]
    assert nxt.removed["vm-density"] == 1
    for host in first.ranked:
        world.cluster.set_state(host.id, "maintenance")
    assert sched.next_of(req, first) is None  # the ranking ran dry: decide afresh
