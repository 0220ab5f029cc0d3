"""Guaranteed bandwidth: the sum of guarantees on a host's NICs and on its ToR's uplink
never exceeds their capacity.

The numbers are the columns QoS admission moves (``used_bandwidth_mbps`` of the
host and of its ToR), read through :func:`fuyun.qos.admission.left`, so the
filter and admission agree on what is left.
"""

from fuyun.qos.admission import left
from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class BandwidthFilter:
    name = "nic-bandwidth"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        need = req.demand.bandwidth_mbps + req.demand.qos_mbps
        free = left(host.nic_mbps, host.used_bandwidth_mbps)
        if need > free:
            return f"needs {need} Mbit/s guaranteed, {free} left on its NICs"
        tor = cluster.switches.get(host.tor)
        if req.demand.qos_mbps and tor is not None:
            free = left(tor.uplink_mbps, tor.used_bandwidth_mbps)
            if req.demand.qos_mbps > free:
                return (
                    f"needs {req.demand.qos_mbps} Mbit/s guaranteed on ToR {tor.name}'s uplink,"
                    f" {free} left"
                )
        return None
