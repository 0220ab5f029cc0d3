"""The candidate walk and batch ranking: what the planner relies on, checked by hand."""

from __future__ import annotations

from fuyun.ipam.l2 import SegmentView, port_joins
from fuyun.scheduler.framework import Request, Scheduler
from fuyun.scheduler.model import Demand, NetworkNeed
from fuyun.scheduler.plugins import default_filters, default_weighers
from fuyun.scheduler.plugins.switch_capacity import SwitchCapacityFilter
from tests.scheduler.conftest import World

SMALL = Demand(vcpus=2, ram_mb=4096, disk_gb=20, bandwidth_mbps=100)


def _sched(world: World) -> Scheduler:
    return Scheduler(world.cluster, default_filters(), default_weighers())


def test_a_routed_vlan_confines_the_walk_to_its_tor(world: World) -> None:
    # Module B is routed: a VLAN already on B-t2 may only take hosts below B-t2.
    net = NetworkNeed(world.ids["B"], world.ids["B"], False, {world.ids["B-t2"]: 1})
    req = Request(SMALL, (net,))
    sched = _sched(world)
    assert {h.name for h in sched.candidates(req)} == {"B-t2-h1", "B-t2-h2"}
    # An explanation still visits every host and says why the others are out.
    explained = sched.select(req, explain=True)
    assert explained.removed["network-reachability"] == 6
    for host in ("B-t2-h1", "B-t2-h2"):
        world.host(host).vm_count = 4  # at their 1p4v limit
        world.cluster.set_state(world.ids[host], "active")
    decision = sched.select(req)
    assert decision.host is None and decision.considered == 0


def test_ranked_is_the_decisions_order_and_select_its_head(world: World) -> None:
    net = NetworkNeed(world.ids["A"], world.ids["A"], True, {world.ids["A-t1"]: 1})
    req = Request(SMALL, (net,))
    world.cluster.claim(world.ids["A-t1-h2"], SMALL)
    sched = _sched(world)
    ranked, decision = sched.ranked(req)
    assert [h.name for h in ranked][:2] == ["A-t1-h2", "A-t1-h1"]  # in the span, fuller first
    assert {h.name for h in ranked} == {"A-t1-h1", "A-t1-h2", "A-t2-h1", "A-t2-h2"}
    assert sched.select(req).host is ranked[0] is decision.host


def test_switch_capacity_matches_the_l2_model(world: World) -> None:
    # The filter's arithmetic is port_joins': for every switch it touches, used + delta.
    c, f = world.cluster, SwitchCapacityFilter()
    for switched, module in ((True, "A"), (False, "B")):
        span = {world.ids[f"{module}-t1"]: 3}
        net = NetworkNeed(world.ids[module], world.ids[module], switched, span)
        for tor in (f"{module}-t1", f"{module}-t2"):
            host = world.host(f"{tor}-h1")
            if not switched and tor.endswith("t2"):
                continue  # a routed VLAN cannot join another ToR
            aggs = c.modules[world.ids[module]].aggregation
            change = port_joins(SegmentView(1, switched, aggs, dict(span)), host.tor, 1)
            for sw_id, delta in change.deltas.items():
                sw = c.switches[sw_id]
                for table, d in (("mac", delta.mac), ("arp", delta.arp), ("vlans", delta.vlans)):
                    cap = f"{table}_capacity" if table != "vlans" else "vlan_capacity"
                    used = f"used_{table}"
                    saved = getattr(sw, used)
                    setattr(sw, used, getattr(sw, cap) - d)  # exactly full after the port
                    assert f.reject(c, Request(SMALL, (net,)), host) is None, (tor, table)
                    if d:
                        setattr(sw, used, getattr(sw, cap) - d + 1)
                        assert f.reject(c, Request(SMALL, (net,)), host) is not None, (tor, sw.name)
                    setattr(sw, used, saved)
