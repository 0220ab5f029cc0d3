"""Guaranteed bandwidth: the sum of guarantees on a host's NICs never exceeds their speed."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class BandwidthFilter:
    name = "nic-bandwidth"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        free = host.nic_mbps - host.used_bandwidth_mbps
        if req.demand.bandwidth_mbps <= free:
            return None
        return f"needs {req.demand.bandwidth_mbps} Mbit/s guaranteed, {free} left on its NICs"
