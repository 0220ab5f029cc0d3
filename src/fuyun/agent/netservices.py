"""The network-services agent: a network node's routers and DHCP/DNS, on level.

Each pass compares the generation of every network the node serves (those of its
modules) with what the node has in force, and only for a network whose generation
moved asks for the full :class:`~fuyun.netsvc.service.NetworkService` and applies
it; a network that is gone from the store is removed from the node (its dnsmasq
stopped, its router interfaces deleted). A converged pass is one small query. A
failing network is logged once and retried next pass; the others still converge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fuyun.config import Settings
from fuyun.domain.errors import FuyunError
from fuyun.netsvc.service import NetworkService
from fuyun.services.netservices import network_generations, network_service
from fuyun.store.engine import Database

log = logging.getLogger("fuyun.agent.netservices")


class NetworkServicesSource(Protocol):
    def generations(self, modules: set[str]) -> dict[str, int]:
        """Network id -> generation of every network of ``modules``."""

    def service(self, network_id: str) -> NetworkService: ...


class StoreNetworkServices:
    """Desired network services straight from the store (a lab, one controller)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings

    def generations(self, modules: set[str]) -> dict[str, int]:
        return network_generations(self.db, modules)

    def service(self, network_id: str) -> NetworkService:
        return network_service(self.db, self.settings, network_id)


class ServiceNode(Protocol):
    """What runs the services (``fuyun.drivers.network.ovs.netnode.NetworkNode``)."""

    def modules(self) -> set[str]: ...

    def applied(self) -> dict[str, NetworkService]: ...

    def apply(self, svc: NetworkService) -> None: ...

    def remove(self, network_id: str) -> None: ...


@dataclass
class ServicesPass:
    applied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class NetworkServicesAgent:
    def __init__(self, source: NetworkServicesSource, node: ServiceNode) -> None:
        self.source, self.node = source, node
        self._failing: dict[str, str] = {}

    def reconcile(self) -> ServicesPass:
        result = ServicesPass()
        want = self.source.generations(self.node.modules())
        have = {k: v.generation for k, v in self.node.applied().items()}
        for network_id in sorted(set(have) - set(want)):
            if self._guard(result, network_id, lambda n=network_id: self.node.remove(n)):
                result.removed.append(network_id)
        for network_id, generation in sorted(want.items()):
            if have.get(network_id) == generation:
                continue
            if self._guard(result, network_id, lambda n=network_id: self._apply(n)):
                result.applied.append(network_id)
        return result

    def _apply(self, network_id: str) -> None:
        self.node.apply(self.source.service(network_id))

    def _guard(self, result: ServicesPass, network_id: str, step: Callable[[], None]) -> bool:
        try:
            step()
        except FuyunError as exc:
            if self._failing.get(network_id) != exc.message:
                log.warning("network %s services not converged: %s", network_id, exc.message)
                self._failing[network_id] = exc.message
            result.errors[network_id] = exc.message
            return False
        self._failing.pop(network_id, None)
        return True
