"""Local disk is not overcommitted."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class DiskFilter:
    name = "disk"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        free = host.disk_gb - host.used_disk_gb
        if req.demand.disk_gb <= free:
            return None
        return f"needs {req.demand.disk_gb} GB disk, {free} free"
