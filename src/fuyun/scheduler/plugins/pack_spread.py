"""Pack (fill the fullest host first, keep whole hosts free) or spread (emptiest first)."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class PackSpreadWeigher:
    name = "pack-spread"

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def raw(self, cluster: Cluster, req: Request, host: HostSlot) -> float:
        used = host.used_vcpus / max(1, host.vcpus * cluster.cpu_ratio)
        return used if req.strategy == "pack" else -used
