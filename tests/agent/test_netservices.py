"""The network-services agent on level: apply on a generation change, remove the gone."""

from __future__ import annotations

import uuid
from dataclasses import replace

from fuyun.agent.netservices import NetworkServicesAgent
from fuyun.domain.errors import DriverError
from fuyun.netsvc.scope import DhcpScope, SubnetScope
from fuyun.netsvc.service import NetworkService, Segment


def _svc(generation: int = 1, network_id: str | None = None) -> NetworkService:
    nid = network_id or str(uuid.uuid4())
    sub = SubnetScope("10.7.0.0/24", "10.7.0.1")
    scope = DhcpScope(nid, "n", "t", (100,), "n.t.z", 1500, True, (sub,), ())
    return NetworkService(nid, generation, str(uuid.uuid4()), "m1", (Segment(100, (sub,)),), scope)


class Source:
    def __init__(self) -> None:
        self.services: dict[str, NetworkService] = {}
        self.asked: list[str] = []

    def generations(self, modules: set[str]) -> dict[str, int]:
        return {k: v.generation for k, v in self.services.items() if v.module in modules}

    def service(self, network_id: str) -> NetworkService:
        self.asked.append(network_id)
        return self.services[network_id]


class Node:
    def __init__(self) -> None:
        self.running: dict[str, NetworkService] = {}
        self.fail: set[str] = set()

    def modules(self) -> set[str]:
        return {"m1"}

    def applied(self) -> dict[str, NetworkService]:
        return dict(self.running)

    def apply(self, svc: NetworkService) -> None:
        if svc.network_id in self.fail:
            raise DriverError("dnsmasq exited with 2")
        self.running[svc.network_id] = svc

    def remove(self, network_id: str) -> None:
        self.running.pop(network_id)


def test_only_moved_generations_are_fetched_and_applied() -> None:
    source, node = Source(), Node()
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
    source, node = Source(), Node()
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
    source, node = Source(), Node()
    other = replace(_svc(), module="m2")
    source.services = {other.network_id: other}
    assert NetworkServicesAgent(source, node).reconcile().applied == []
