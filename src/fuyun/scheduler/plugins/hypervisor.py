"""A request may ask for a hypervisor type (kvm, xen)."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class HypervisorFilter:
    name = "hypervisor"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        if req.hypervisor is None or host.hypervisor == req.hypervisor:
            return None
        return f"runs {host.hypervisor}, {req.hypervisor} asked"
