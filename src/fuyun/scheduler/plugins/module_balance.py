"""Balance across modules: prefer modules with fewer VMs per host."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class ModuleBalanceWeigher:
    name = "module-balance"

    def __init__(self, weight: float = 0.5):
        self.weight = weight

    def raw(self, cluster: Cluster, req: Request, host: HostSlot) -> float:
        return -cluster.module_vms[host.module] / (cluster.module_hosts[host.module] or 1)
