"""A network node in memory: what the network-services agent applied, and failures on demand."""

from __future__ import annotations

from fuyun.domain.errors import DriverError
from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.service import NetworkService


class MemoryNode:
    """Serves ``modules``; a network or leak id in ``fail`` is refused as a real node would."""

    def __init__(self, modules: set[str]) -> None:
        self.served = set(modules)
        self.running: dict[str, NetworkService] = {}
        self.fail: set[str] = set()
        self.routed: dict[str, LeakPath] = {}

    def modules(self) -> set[str]:
        return set(self.served)

    def applied(self) -> dict[str, NetworkService]:
        return dict(self.running)

    def apply(self, svc: NetworkService) -> None:
        if svc.network_id in self.fail:
            raise DriverError("dnsmasq exited with 2")
        self.running[svc.network_id] = svc

    def remove(self, network_id: str) -> None:
        self.running.pop(network_id)

    def applied_leaks(self) -> dict[str, LeakPath]:
        return dict(self.routed)

    def apply_leak(self, path: LeakPath) -> None:
        if path.leak_id in self.fail:
            raise DriverError("no such router")
        self.routed[path.leak_id] = path

    def remove_leak(self, leak_id: str) -> None:
        self.routed.pop(leak_id)
