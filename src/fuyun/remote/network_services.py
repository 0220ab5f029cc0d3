"""A network node's desired state over HTTP: network services and route leaks.

The same transport as :class:`~fuyun.remote.desired_state.HttpDesiredStateSource`
(failover across controllers, backoff, refusals raised), with the host credential of
the machine the node runs on: the API answers for that host's module only, or for
``modules`` when the token is an operator's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fuyun.netsvc.leaks import Export, LeakPath
from fuyun.netsvc.service import NetworkService
from fuyun.remote.desired_state import HttpDesiredStateSource


@dataclass
class HttpNetworkServices(HttpDesiredStateSource):
    modules: list[str] = field(default_factory=list)  # empty: the host's module
    deadline_s: float = 10.0

    def _params(self) -> dict[str, Any] | None:
        return {"module": self.modules} if self.modules else None

    def _get(self, path: str) -> Any:
        body = self._call("GET", path, params=self._params(), deadline_s=self.deadline_s)
        if body is None:
            raise ConnectionError(f"no controller answered {path}")
        return body

    def generations(self) -> dict[str, int]:
        body = self._get(f"/agent/hosts/{self.host}/network-services")
        return {str(k): int(v) for k, v in body["generations"].items()}

    def service(self, network_id: str) -> NetworkService:
        body = self._get(f"/agent/hosts/{self.host}/network-services/{network_id}")
        return NetworkService.from_json(json.dumps(body))

    def leaks(self) -> dict[str, LeakPath]:
        out = {}
        for raw in self._get(f"/agent/hosts/{self.host}/route-leaks"):
            path = LeakPath(
                raw["leak_id"],
                raw["vrf_id"],
                raw["peer_vrf_id"],
                tuple(Export(**e) for e in raw["exports"]),
                tuple(Export(**e) for e in raw["peer_exports"]),
                raw.get("name", ""),
            )
            out[path.leak_id] = path
        return out

    def report_services(self, generations: dict[str, int]) -> int:
        body = self._call(
            "POST",
            f"/agent/hosts/{self.host}/network-services/applied",
            params=self._params(),
            json={"generations": generations},
            deadline_s=self.deadline_s,
        )
        if body is None:
            raise ConnectionError("no controller took the network services report")
        return int(body["accepted"])
