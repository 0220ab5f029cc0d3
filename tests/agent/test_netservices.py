"""The network-services agent on level: apply on a generation change, remove the gone."""

from __future__ import annotations

import uuid
from dataclasses import replace

from fuyun.agent.netservices import NetworkServicesAgent
from fuyun.netsvc.leaks import Export, LeakPath
from fuyun.netsvc.scope import DhcpScope, SubnetScope
from fuyun.netsvc.service import NetworkService, Segment
from tests.support.memory_node import MemoryNode


def _svc(generation: int = 1, network_id: str | None = None) -> NetworkService:
    nid = network_id or str(uuid.uuid4())
    sub = SubnetScope("10.7.0.0/24", "10.7.0.1")
    scope = DhcpScope(nid, "n", "t", (100,), "n.t.z", 1500, True, (sub,), ())
    return NetworkService(nid, generation, str(uuid.uuid4()), "m1", (Segment(100, (sub,)),), scope)


class Source:
    def __init__(self) -> None:
        self.services: dict[str, NetworkService] = {}
        self.asked: list[str] = []
        self.paths: dict[str, LeakPath] = {}
        self.reports: list[dict[str, int]] = []

    def generations(self, modules: set[str]) -> dict[str, int]:
        return {k: v.generation for k, v in self.services.items() if v.module in modules}

    def service(self, network_id: str) -> NetworkService:
        self.asked.append(network_id)
        return self.services[network_id]

    def leaks(self, modules: set[str]) -> dict[str, LeakPath]:
        return dict(self.paths)

    def report(self, generations: dict[str, int]) -> None:
        self.reports.append(dict(generations))


def test_only_moved_generations_are_fetched_and_applied() -> None:
    source, node = Source(), MemoryNode({"m1"})
    a, b = _svc(), _svc()
    source.services = {a.network_id: a, b.network_id: b}
    agent = NetworkServicesAgent(source, node)
    assert sorted(agent.reconcile().applied) == sorted([a.network_id, b.network_id])
    source.asked.clear()
    assert agent.reconcile().applied == []  # converged: one generations query, no fetch
    assert source.asked == []
    source.services[a.network_id] = replace(a, generation=2)
    assert agent.reconcile().applied == [a.network_id]
    assert node.running[a.network_id].generation == 2


def test_a_deleted_network_is_removed_and_a_failing_one_retried() -> None:
    source, node = Source(), MemoryNode({"m1"})
    a, b = _svc(), _svc()
    source.services = {a.network_id: a, b.network_id: b}
    node.fail = {b.network_id}
    agent = NetworkServicesAgent(source, node)
    first = agent.reconcile()
    assert first.applied == [a.network_id] and b.network_id in first.errors
    node.fail.clear()
    del source.services[a.network_id]
    second = agent.reconcile()
    assert second.removed == [a.network_id] and second.applied == [b.network_id]
    assert set(node.running) == {b.network_id}


def test_networks_of_other_modules_are_left_to_their_node() -> None:
    source, node = Source(), MemoryNode({"m1"})
    other = replace(_svc(), module="m2")
    source.services = {other.network_id: other}
    assert NetworkServicesAgent(source, node).reconcile().applied == []


def test_the_applied_generation_is_reported_once_per_change() -> None:
    source, node = Source(), MemoryNode({"m1"})
    a = _svc()
    source.services = {a.network_id: a}
    agent = NetworkServicesAgent(source, node)
    agent.reconcile()
    agent.reconcile()
    assert source.reports == [{a.network_id: 1}]
    source.services[a.network_id] = replace(a, generation=4)
    agent.reconcile()
    assert source.reports[-1] == {a.network_id: 4} and len(source.reports) == 2


def test_leaks_are_laid_changed_and_removed_on_level() -> None:
    source, node = Source(), MemoryNode({"m1"})
    path = LeakPath("l1", "v1", "v2", (Export("10.1.0.0/24"),), (Export("10.2.0.0/24"),))
    source.paths = {"l1": path}
    node.fail = {"l1"}
    agent = NetworkServicesAgent(source, node)
    assert "l1" in agent.reconcile().errors  # retried next pass
    node.fail.clear()
    assert agent.reconcile().leaks_applied == ["l1"]
    assert agent.reconcile().leaks_applied == []  # converged: nothing to do
    narrowed = replace(path, peer_exports=(Export("10.2.0.0/28"),))
    source.paths = {"l1": narrowed}
    assert agent.reconcile().leaks_applied == ["l1"] and node.routed["l1"] == narrowed
    source.paths = {}
    assert agent.reconcile().leaks_removed == ["l1"] and node.routed == {}
