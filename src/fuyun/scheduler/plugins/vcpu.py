"""vCPUs within cores times the configured overcommit ratio."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class VcpuFilter:
    name = "vcpu"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        free = int(host.vcpus * cluster.cpu_ratio) - host.used_vcpus
        if req.demand.vcpus <= free:
            return None
        return f"needs {req.demand.vcpus} vCPU, {free} free (ratio {cluster.cpu_ratio})"
