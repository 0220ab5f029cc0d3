"""Only active hosts take VMs: maintenance and failed hosts are out."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class HostStateFilter:
    name = "host-state"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        return None if host.state == "active" else f"host is {host.state}"
