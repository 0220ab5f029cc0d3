"""Each filter and weigher on its own, and the explanations they give."""

from __future__ import annotations

from fuyun.scheduler.framework import Request, Scheduler
from fuyun.scheduler.model import Demand, GroupNeed, NetworkNeed
from fuyun.scheduler.plugins import default_filters, default_weighers
from fuyun.scheduler.plugins.affinity import AffinityFilter
from fuyun.scheduler.plugins.bandwidth import BandwidthFilter
from fuyun.scheduler.plugins.density import DensityFilter
from fuyun.scheduler.plugins.disk import DiskFilter
from fuyun.scheduler.plugins.host_state import HostStateFilter
from fuyun.scheduler.plugins.hypervisor import HypervisorFilter
from fuyun.scheduler.plugins.locality import LocalityWeigher
from fuyun.scheduler.plugins.module_balance import ModuleBalanceWeigher
from fuyun.scheduler.plugins.pack_spread import PackSpreadWeigher
from fuyun.scheduler.plugins.ram import RamFilter
from fuyun.scheduler.plugins.reachability import ReachabilityFilter
from fuyun.scheduler.plugins.switch_capacity import SwitchCapacityFilter
from fuyun.scheduler.plugins.vcpu import VcpuFilter
from tests.scheduler.conftest import World

SMALL = Demand(vcpus=2, ram_mb=4096, disk_gb=20, bandwidth_mbps=100)


def _req(**kw: object) -> Request:
    return Request(demand=kw.pop("demand", SMALL), **kw)  # type: ignore[arg-type]


def test_host_state(world: World) -> None:
    h = world.host("A-t1-h1")
    assert HostStateFilter().reject(world.cluster, _req(), h) is None
    world.cluster.set_state(h.id, "maintenance")
    assert HostStateFilter().reject(world.cluster, _req(), h) == "host is maintenance"


def test_hypervisor(world: World) -> None:
    h = world.host("A-t1-h1")
    assert HypervisorFilter().reject(world.cluster, _req(hypervisor="kvm"), h) is None
    assert "runs kvm" in (HypervisorFilter().reject(world.cluster, _req(hypervisor="xen"), h) or "")


def test_vcpu_with_overcommit(world: World) -> None:
    h = world.host("A-t1-h1")  # 8 cores x 2.0 = 16 vCPU
    assert VcpuFilter().reject(world.cluster, _req(demand=Demand(16, 1, 1)), h) is None
    reason = VcpuFilter().reject(world.cluster, _req(demand=Demand(17, 1, 1)), h)
    assert reason == "needs 17 vCPU, 16 free (ratio 2.0)"


def test_ram_disk_density_bandwidth(world: World) -> None:
    h = world.host("A-t1-h1")
    c = world.cluster
    assert (
        RamFilter().reject(c, _req(demand=Demand(1, 40000, 1)), h)
        == "needs 40000 MiB RAM, 32768 free"
    )
    assert (
        DiskFilter().reject(c, _req(demand=Demand(1, 1, 501)), h) == "needs 501 GB disk, 500 free"
    )
    assert "left on its NICs" in (
        BandwidthFilter().reject(c, _req(demand=Demand(1, 1, 1, 1001)), h) or ""
    )
    for _ in range(4):
        c.claim(h.id, Demand(1, 1, 1))
    assert DensityFilter().reject(c, _req(), h) == "holds 4 VMs, its 1p4v limit"


def test_reachability_switched_and_routed(world: World) -> None:
    c, f = world.cluster, ReachabilityFilter()
    net_a = NetworkNeed(world.ids["A"], world.ids["A"], True, {world.ids["A-t1"]: 3})
    assert f.reject(c, _req(networks=(net_a,)), world.host("A-t2-h1")) is None
    assert (
        f.reject(c, _req(networks=(net_a,)), world.host("B-t1-h1")) == "network lives in module A"
    )
    net_b = NetworkNeed(world.ids["B"], world.ids["B"], False, {world.ids["B-t1"]: 1})
    assert f.reject(c, _req(networks=(net_b,)), world.host("B-t1-h2")) is None
    assert (
        f.reject(c, _req(networks=(net_b,)), world.host("B-t2-h1"))
        == "routed-clos confines the VLAN to ToR B-t1"
    )
    empty_b = NetworkNeed(world.ids["B"], world.ids["B"], False, {})
    assert f.reject(c, _req(networks=(empty_b,)), world.host("B-t2-h1")) is None


def test_switch_capacity(world: World) -> None:
    c, f = world.cluster, SwitchCapacityFilter()
    net = NetworkNeed(world.ids["A"], world.ids["A"], True, {world.ids["A-t1"]: 10})
    # Joining ToR A-t2 costs it 10 existing MACs + 1; with 40 used of 50 that is 51.
    world.switch("A-t2").used_mac = 40
    assert (
        f.reject(c, _req(networks=(net,)), world.host("A-t2-h1"))
        == "switch A-t2: mac table would hold 51 of 50"
    )
    assert f.reject(c, _req(networks=(net,)), world.host("A-t1-h1")) is None
    world.switch("A-agg1").used_arp = 100
    assert (
        f.reject(c, _req(networks=(net,)), world.host("A-t1-h1"))
        == "switch A-agg1: arp table would hold 101 of 100"
    )


def test_anti_affinity_and_affinity(world: World) -> None:
    c, f = world.cluster, AffinityFilter()
    t1 = world.ids["A-t1"]
    anti = GroupNeed(world.ids["A"], "anti-affinity", "tor", {t1: 1})
    assert f.reject(c, _req(groups=(anti,)), world.host("A-t1-h2")) is not None
    assert f.reject(c, _req(groups=(anti,)), world.host("A-t2-h1")) is None
    aff = GroupNeed(world.ids["A"], "affinity", "module", {world.ids["A"]: 2})
    assert f.reject(c, _req(groups=(aff,)), world.host("A-t2-h1")) is None
    assert "another module" in (f.reject(c, _req(groups=(aff,)), world.host("B-t1-h1")) or "")


def test_weighers(world: World) -> None:
    c = world.cluster
    busy, idle = world.host("A-t1-h1"), world.host("A-t1-h2")
    c.claim(busy.id, Demand(8, 1, 1))
    pack = PackSpreadWeigher()
    assert pack.raw(c, _req(strategy="pack"), busy) > pack.raw(c, _req(strategy="pack"), idle)
    assert pack.raw(c, _req(strategy="spread"), busy) < pack.raw(c, _req(strategy="spread"), idle)
    net = NetworkNeed(world.ids["A"], world.ids["A"], True, {world.ids["A-t2"]: 1})
    loc = LocalityWeigher()
    assert loc.raw(c, _req(networks=(net,)), world.host("A-t2-h1")) == 1.0
    assert loc.raw(c, _req(networks=(net,)), world.host("A-t1-h1")) == 0.0
    bal = ModuleBalanceWeigher()
    assert bal.raw(c, _req(), world.host("B-t1-h1")) > bal.raw(c, _req(), busy)


def test_scheduler_prefers_span_tors_and_packs(world: World) -> None:
    s = Scheduler(world.cluster, default_filters(), default_weighers())
    net = NetworkNeed(world.ids["A"], world.ids["A"], True, {world.ids["A-t2"]: 1})
    decision = s.select(_req(networks=(net,)))
    assert decision.host is not None and decision.host.tor == world.ids["A-t2"]
    world.cluster.claim(world.ids["A-t1-h2"], Demand(4, 1, 1))
    packed = s.select(_req())
    assert packed.host is not None and packed.host.name == "A-t1-h2", "pack fills the busy host"
    spread = s.select(_req(strategy="spread"))
    assert spread.host is not None
    assert spread.host.module == world.ids["B"], "spread and balance pick the emptier module"


def test_explanation_names_every_filter_that_removed_hosts(world: World) -> None:
    s = Scheduler(world.cluster, default_filters(), default_weighers())
    world.cluster.set_state(world.ids["A-t1-h1"], "maintenance")
    net = NetworkNeed(world.ids["A"], world.ids["A"], True, {})
    decision = s.select(_req(networks=(net,), demand=Demand(12, 1, 1)), explain=True)
    assert decision.host is not None
    assert decision.considered == 8
    assert decision.removed["host-state"] == 1
    assert decision.removed["network-reachability"] == 4
    assert ("A-t1-h1", "host is maintenance") in decision.samples["host-state"]
    assert decision.top and decision.top[0][0] == decision.host.name
    hopeless = s.select(_req(demand=Demand(99, 1, 1)), explain=True)
    assert hopeless.host is None
    assert "vcpu" in hopeless.reasons()
    verdicts = dict(s.verdicts(_req(networks=(net,)), world.host("B-t1-h1")))
    assert verdicts["network-reachability"] == "network lives in module A"
    assert verdicts["vcpu"] is None


def test_pinned_requests_only_consider_that_host(world: World) -> None:
    s = Scheduler(world.cluster, default_filters(), default_weighers())
    d = s.select(_req(pinned=world.ids["B-t2-h2"]))
    assert d.host is not None and d.host.name == "B-t2-h2" and d.considered == 1


def test_tors_that_cannot_fit_are_skipped_without_looking_at_hosts(world: World) -> None:
    s = Scheduler(world.cluster, default_filters(), default_weighers())
    for name in ("A-t1-h1", "A-t1-h2"):
        world.cluster.claim(world.ids[name], Demand(15, 1, 1))
    net = NetworkNeed(world.ids["A"], world.ids["A"], True, {})
    d = s.select(_req(networks=(net,), demand=Demand(4, 1, 1)))
    assert d.host is not None and d.host.tor == world.ids["A-t2"]
    assert d.considered <= 2


def test_a_move_avoids_its_source_and_stays_within_the_tors_given(world: World) -> None:
    s = Scheduler(world.cluster, default_filters(), default_weighers())
    net = NetworkNeed(world.ids["A"], world.ids["A"], True, {world.ids["A-t1"]: 1})
    source = world.ids["A-t1-h1"]
    d = s.select(_req(networks=(net,), avoid=frozenset({source})))
    assert d.host is not None and d.host.id != source
    only_t2 = frozenset({world.ids["A-t2"]})
    d = s.select(_req(networks=(net,), avoid=frozenset({source}), tors=only_t2))
    assert d.host is not None and d.host.tor == world.ids["A-t2"]
    d = s.select(_req(networks=(net,), tors=frozenset({world.ids["B-t1"]})))
    assert d.host is None, "module B is out of the network's reach"


def test_an_extended_vlan_reaches_another_module(world: World) -> None:
    c, f = world.cluster, ReachabilityFilter()
    net = NetworkNeed(
        world.ids["A"],
        world.ids["A"],
        True,
        {world.ids["A-t1"]: 1},
        extended=frozenset({world.ids["B"]}),
    )
    assert f.reject(c, _req(networks=(net,)), world.host("B-t2-h1")) is None
    assert _req(networks=(net,)).modules == frozenset({world.ids["A"], world.ids["B"]})
