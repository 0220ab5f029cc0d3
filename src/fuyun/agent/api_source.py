"""The agent's desired state over the API: the watch endpoint instead of the database.

On a hypervisor the agent has no database credentials, only its host credential
(``fyh_…``, ``fuyun host agent-credential``). :class:`ApiSource` adapts the HTTP client
(:class:`fuyun.remote.desired_state.HttpDesiredStateSource`: full resync on start,
then long-poll with a resume token) to :class:`~fuyun.agent.source.DesiredStateSource`:
``desired`` waits up to ``wait_s`` for a change, so the agent's loop sleeps on the
controller instead of polling it. :class:`ApiNetworkServices` does the same for the
network node (routers, DHCP/DNS, route leaks), polled each pass like the store source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fuyun.domain.errors import DriverError
from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.service import NetworkService
from fuyun.remote.desired_state import AgentRefused, Applied, HttpDesiredStateSource
from fuyun.remote.network_services import HttpNetworkServices
from fuyun.services.hoststate import HostDocument

T = TypeVar("T")


class ApiSource:
    def __init__(
        self, urls: list[str], token: str, *, wait_s: float = 5.0, client: Any = None
    ) -> None:
        self.urls, self.token, self.wait_s = urls, token, wait_s
        self._client = client  # an httpx-compatible client (tests pass the ASGI one)
        self._remote: dict[str, HttpDesiredStateSource] = {}

    def _for(self, host: str) -> HttpDesiredStateSource:
        if host not in self._remote:
            self._remote[host] = HttpDesiredStateSource(
                self.urls, host, self.token, watch_timeout_s=self.wait_s, _client=self._client
            )
        return self._remote[host]

    def desired(self, host: str) -> list[HostDocument]:
        remote = self._for(host)
        remote.watch(timeout_s=self.wait_s)  # the first call resyncs
        return [
            HostDocument(d.enforcement_point, d.generation, d.digest, d.rendered)
            for d in sorted(remote.devices.values(), key=lambda d: d.enforcement_point)
            if d.device_type == "host" and d.device_name == host
        ]

    def report(
        self,
        host: str,
        enforcement_point: str,
        generation: int,
        digest: str,
        drift: tuple[str, ...],
    ) -> None:
        remote = self._for(host)
        for device in remote.devices.values():
            if device.device_type == "host" and device.enforcement_point == enforcement_point:
                detail = {"differences": list(drift[:200])} if drift else None
                remote.report([Applied(device.id, generation, digest, detail)])
                return

    def close(self) -> None:
        for remote in self._remote.values():
            remote.close()


class ApiNetworkServices:
    """:class:`~fuyun.agent.netservices.NetworkServicesSource` over the API, for a network
    node run by ``fuyun agent --api URL --lab``: the node's modules must be those the
    credential may read (its host's module; any with an operator's token)."""

    def __init__(
        self,
        urls: list[str],
        token: str,
        host: str,
        *,
        modules: list[str] | None = None,
        client: Any = None,
    ) -> None:
        self._remote = HttpNetworkServices(
            urls, host, token, modules=list(modules or []), _client=client
        )

    def generations(self, modules: set[str]) -> dict[str, int]:
        return self._wrap(self._remote.generations)

    def service(self, network_id: str) -> NetworkService:
        return self._wrap(lambda: self._remote.service(network_id))

    def leaks(self, modules: set[str]) -> dict[str, LeakPath]:
        return self._wrap(self._remote.leaks)

    def report(self, generations: dict[str, int]) -> None:
        self._wrap(lambda: self._remote.report_services(generations))

    def close(self) -> None:
        self._remote.close()

    @staticmethod
    def _wrap(call: Callable[[], T]) -> T:
        """Transport trouble as a driver error: the agent logs it and retries next pass."""
        try:
            return call()
        except (ConnectionError, AgentRefused) as exc:
            raise DriverError(f"network services over the API: {exc}") from exc
