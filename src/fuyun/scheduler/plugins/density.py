"""The 1pXv limit: at most ``max_vms`` VMs on a host."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class DensityFilter:
    name = "vm-density"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        if host.vm_count < host.max_vms:
            return None
        return f"holds {host.vm_count} VMs, its 1p{host.max_vms}v limit"
