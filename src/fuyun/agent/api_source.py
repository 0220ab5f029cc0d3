"""The agent's desired state over the API: the watch endpoint instead of the database.

On a hypervisor the agent has no database credentials, only its host credential
(``fyh_…``, ``fuyun host agent-credential``). :class:`ApiSource` adapts the HTTP client
(:class:`fuyun.remote.desired_state.HttpDesiredStateSource`: full resync on start,
then long-poll with a resume token) to :class:`~fuyun.agent.source.DesiredStateSource`:
``desired`` waits up to ``wait_s`` for a change, so the agent's loop sleeps on the
controller instead of polling it.
"""

from __future__ import annotations

from typing import Any

from fuyun.remote.desired_state import Applied, HttpDesiredStateSource
from fuyun.services.hoststate import HostDocument


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
