"""RAM within memory times the configured RAM ratio."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class RamFilter:
    name = "ram"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        free = int(host.ram_mb * cluster.ram_ratio) - host.used_ram_mb
        if req.demand.ram_mb <= free:
            return None
        return f"needs {req.demand.ram_mb} MiB RAM, {free} free"
