"""Tenant locality: prefer ToRs that already carry the request's VLANs, so spans stay small."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class LocalityWeigher:
    name = "locality"

    def __init__(self, weight: float = 2.0):
        self.weight = weight

    def raw(self, cluster: Cluster, req: Request, host: HostSlot) -> float:
        return float(sum(1 for n in req.networks if n.span_ports.get(host.tor, 0) > 0))
