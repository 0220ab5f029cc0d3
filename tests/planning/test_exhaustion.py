"""Exhaustion points worked out by hand on tiny fabrics (see conftest for the numbers)."""

from __future__ import annotations

from fuyun.planning.plan import Options, plan, run
from fuyun.planning.report import PlanResult
from tests.planning.conftest import fabric, scenario

NO_EXTRAS = Options(strategies=False, remedies=False, nplus1=False)


def _run(spec, sc) -> PlanResult:  # type: ignore[no-untyped-def]
    return run(spec, sc, NO_EXTRAS)[1]


def test_density_runs_out_at_the_thirteenth_vm() -> None:
    # 4 hosts x 1p3v = 12 VMs. Tenants of 5 VMs arrive one a step: 5, 10, 15.
    r = _run(fabric(), scenario(new_tenants_per_step=1))
    assert (r.demanded, r.placed, r.unplaced, r.first_unplaced_step) == (15, 12, 3, 2)
    first = r.first("module")["s1-m1"]
    assert (first.resource, first.step) == ("density", 2)
    assert (r.first("site")["s1"].resource, r.first("site")["s1"].step) == ("density", 2)
    assert [t.density.used for t in r.timeline] == [5, 10, 12]
    assert r.timeline[-1].density.pct == 100.0
    assert r.modules[0]["first_exhausted"] == "density"


def test_ram_binds_before_density_for_a_bigger_flavor() -> None:
    # s1.medium asks 4 GiB: an 8 GiB host takes 2 although its limit is 1p3v; 4 hosts -> 8.
    r = _run(fabric(), scenario(initial_vms=(9, 9), flavors=(("s1.medium", 1.0),), steps=1))
    assert (r.placed, r.unplaced, r.first_unplaced_step) == (8, 1, 0)
    assert r.first("module")["s1-m1"].resource == "ram"
    assert r.timeline[0].ram.used == 8 * 4096


def test_site_ip_space_runs_out_at_the_fifty_third_address() -> None:
    # A /26 aggregate holds four /28s of 13 usable addresses (16 - network, broadcast,
    # gateway): 52. Demand doubles: 20, +20, +40. Compute (16 hosts x 4 by RAM = 64) is
    # never the limit.
    spec = fabric(hosts=8, max_vms=10, aggregate="10.0.0.0/26")
    r = _run(spec, scenario(initial_vms=(20, 20), growth_per_step=1.0, prefix_len=28))
    assert (r.demanded, r.placed, r.unplaced, r.first_unplaced_step) == (80, 52, 28, 2)
    assert (r.first("site")["s1"].resource, r.first("site")["s1"].step) == ("ip-space", 2)
    waste = r.addresses
    assert (waste.subnets, waste.growth_subnets, waste.growth_vlans) == (4, 3, 0)
    assert (waste.allocated, waste.reserved, waste.boundary_loss, waste.free) == (52, 12, 9, 0)
    assert [t.space.used for t in r.timeline] == [32, 64, 64]


def test_growth_strategies_cost_what_the_table_says() -> None:
    spec = fabric(hosts=8, max_vms=10, aggregate="10.0.0.0/26")
    sc = scenario(initial_vms=(20, 20), growth_per_step=1.0, prefix_len=28)
    result = plan(spec, sc, Options(remedies=False, nplus1=False))
    by = {w.growth: w for w in result.strategies}
    assert (by["secondary"].boundary_loss, by["secondary"].growth_vlans) == (9, 0)
    assert (by["new-vlan"].boundary_loss, by["new-vlan"].growth_vlans) == (9, 3)
    # refuse: each full network makes the tenant open another; same addresses, 4 networks.
    assert (by["refuse"].networks, by["refuse"].boundary_loss, by["refuse"].allocated) == (4, 0, 52)


def test_tor_mac_table_refuses_the_sixth_port_of_a_routed_tor() -> None:
    # One routed ToR with a 5-entry MAC table: every port below it is one entry. Its 3
    # hosts take 4 VMs each by RAM; packing puts 4 on h1 and 1 on h2, so the sixth VM is
    # refused by the MAC table on two hosts and by RAM on one: the table is the limit.
    spec = fabric(kind="routed-clos", tors=1, hosts=3, max_vms=10, tor_mac=5)
    r = _run(spec, scenario(initial_vms=(3, 3), growth_per_step=1.0, steps=2))
    assert (r.placed, r.unplaced, r.first_unplaced_step) == (5, 1, 1)
    assert (r.first("module")["s1-m1"].resource, r.first("module")["s1-m1"].step) == (
        "tor-mac",
        1,
    )
    tor = next(s for s in r.switches if s.name == "s1-m1-t1")
    assert (tor.mac.used, tor.mac.capacity, tor.arp.used, tor.vlans.used) == (5, 5, 5, 1)
    assert r.spills == 1  # the tenant tried a second network before the module gave up


def test_routed_clos_confines_a_vlan_to_its_tor_and_the_tenant_opens_another() -> None:
    # Two routed ToRs of one 1p2v host each; 3 VMs: the third cannot follow its VLAN.
    spec = fabric(kind="routed-clos", tors=2, hosts=1, max_vms=2)
    r = _run(spec, scenario(initial_vms=(3, 3), steps=1))
    assert (r.placed, r.unplaced, r.spills) == (3, 0, 1)
    assert [(e.scope, e.resource) for e in r.exhaustion] == [("network", "l2-reach")]
    assert (r.addresses.networks, r.spans.max_tors) == (2, 1)
    switched = _run(fabric(tors=2, hosts=1, max_vms=2), scenario(initial_vms=(3, 3), steps=1))
    assert (switched.placed, switched.spills, switched.spans.max_tors) == (3, 0, 2)


def test_density_change_adds_room_at_its_step() -> None:
    from fuyun.planning.scenario import DensityChange

    # 4 hosts at 1p2v hold 8; raised to 1p3v at step 2 they hold 12. Five VMs arrive
    # a step: 5 placed; 3 placed, 2 refused; then 4 placed (12 - 8), 1 refused.
    sc = scenario(new_tenants_per_step=1, density=DensityChange(2, 2, 3))
    r = _run(fabric(), sc)
    assert [t.density.capacity for t in r.timeline] == [8, 8, 12]
    assert [t.vms for t in r.timeline] == [5, 8, 12]
    assert (r.placed, r.unplaced, r.first_unplaced_step) == (12, 3, 1)


def test_a_two_vlan_pool_runs_out_when_a_routed_tenant_needs_a_third_tor() -> None:
    from fuyun.planning.world import VlanPoolParams

    # Three routed ToRs of one 1p2v host each, a module pool of VLANs 100-101. Six VMs:
    # two on t1 (VLAN 100), two on t2 (VLAN 101, a second network), the fifth needs a
    # third VLAN for t3: the pool is empty, so it and the rest of its request are refused.
    spec = fabric(kind="routed-clos", tors=3, hosts=1, max_vms=2)
    opts = Options(
        strategies=False, remedies=False, nplus1=False, vlan_pool=VlanPoolParams(100, 101, ())
    )
    r = run(spec, scenario(initial_vms=(6, 6), steps=1), opts)[1]
    assert (r.placed, r.unplaced, r.spills) == (4, 2, 1)
    assert (r.first("module")["s1-m1"].resource, r.first("site")["s1"].resource) == (
        "vlan-pool",
        "vlan-pool",
    )
    assert r.timeline[0].vlans.used == r.timeline[0].vlans.capacity == 2
