"""The network-services agent: a network node's routers and DHCP/DNS, on level.

Each pass compares the generation of every network the node serves (those of its
modules) with what the node has in force, and only for a network whose generation
moved asks for the full :class:`~fuyun.netsvc.service.NetworkService` and applies
it; a network that is gone from the store is removed from the node (its dnsmasq
stopped, its router interfaces deleted). Then the approved route leaks of its
modules: each is compared whole with what the node routes (they are few), laid or
changed when it differs, and removed when revoked. The generation a network runs is
reported back once per change (``services_applied_generation``), so lag is visible.
A converged pass is two small queries. A failing network or leak is logged once and
retried next pass; the others still converge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fuyun.config import Settings
from fuyun.domain.errors import FuyunError
from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.service import NetworkService
from fuyun.services.netservices import (
    leak_paths,
    network_generations,
    network_service,
    report_network_services,
)
from fuyun.store.engine import Database

log = logging.getLogger("fuyun.agent.netservices")


class NetworkServicesSource(Protocol):
    def generations(self, modules: set[str]) -> dict[str, int]:
        """Network id -> generation of every network of ``modules``."""

    def service(self, network_id: str) -> NetworkService: ...

    def leaks(self, modules: set[str]) -> dict[str, LeakPath]:
        """Approved route leaks with a side in ``modules``, by leak id."""

    def report(self, generations: dict[str, int]) -> None:
        """The node enforces these networks' generations."""


class StoreNetworkServices:
    """Desired network services straight from the store (a lab, one controller)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings

    def generations(self, modules: set[str]) -> dict[str, int]:
        return network_generations(self.db, modules)

    def service(self, network_id: str) -> NetworkService:
        return network_service(self.db, self.settings, network_id)

    def leaks(self, modules: set[str]) -> dict[str, LeakPath]:
        return leak_paths(self.db, modules)

    def report(self, generations: dict[str, int]) -> None:
        report_network_services(self.db, generations)


class ServiceNode(Protocol):
    """What runs the services (``fuyun.drivers.network.ovs.netnode.NetworkNode``)."""

    def modules(self) -> set[str]: ...

    def applied(self) -> dict[str, NetworkService]: ...

    def apply(self, svc: NetworkService) -> None: ...

    def remove(self, network_id: str) -> None: ...

    def applied_leaks(self) -> dict[str, LeakPath]: ...

    def apply_leak(self, path: LeakPath) -> None: ...

    def remove_leak(self, leak_id: str) -> None: ...


@dataclass
class ServicesPass:
    applied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    leaks_applied: list[str] = field(default_factory=list)
    leaks_removed: list[str] = field(default_factory=list)


class NetworkServicesAgent:
    def __init__(self, source: NetworkServicesSource, node: ServiceNode) -> None:
        self.source, self.node = source, node
        self._failing: dict[str, str] = {}
        self._reported: dict[str, int] = {}

    def reconcile(self) -> ServicesPass:
        result = ServicesPass()
        modules = self.node.modules()
        want = self.source.generations(modules)
        have = {k: v.generation for k, v in self.node.applied().items()}
        for network_id in sorted(set(have) - set(want)):
            if self._guard(result, network_id, lambda n=network_id: self.node.remove(n)):
                result.removed.append(network_id)
                self._reported.pop(network_id, None)
        for network_id, generation in sorted(want.items()):
            if have.get(network_id) == generation:
                continue
            if self._guard(result, network_id, lambda n=network_id: self._apply(n)):
                result.applied.append(network_id)
        self._leaks(modules, result)
        self._report()
        return result

    def _leaks(self, modules: set[str], result: ServicesPass) -> None:
        # After the networks: a leak's link joins routers the networks made.
        want = self.source.leaks(modules)
        have = self.node.applied_leaks()
        for leak_id in sorted(set(have) - set(want)):
            if self._guard(result, leak_id, lambda x=leak_id: self.node.remove_leak(x)):
                result.leaks_removed.append(leak_id)
        for leak_id, path in sorted(want.items()):
            if have.get(leak_id) == path:
                continue
            if self._guard(result, leak_id, lambda p=path: self.node.apply_leak(p)):
                result.leaks_applied.append(leak_id)

    def _report(self) -> None:
        """Report what each network runs, once per change; a failed report is retried."""
        running = {k: v.generation for k, v in self.node.applied().items() if v.generation >= 0}
        changed = {k: g for k, g in running.items() if self._reported.get(k) != g}
        if not changed:
            return
        try:
            self.source.report(changed)
        except FuyunError as exc:
            log.warning("network services report failed: %s", exc.message)
            return
        self._reported.update(changed)

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
