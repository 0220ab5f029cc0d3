"""Network reachability: the host's ToR is in, or can join, every network's span.

A network lives in one module. In a switched CLOS any ToR of that module can
carry its VLAN; a routed CLOS confines the VLAN to the ToR that already has it
(any ToR, while nothing is attached yet). Another module would need an L2
extension between modules: new VMs never get one, but a move keeping its IP may
(the request then names the modules the VLAN can be extended to).
"""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


class ReachabilityFilter:
    name = "network-reachability"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        for need in req.networks:
            if host.module != need.module and host.module not in need.extended:
                module = cluster.modules.get(need.module)
                return f"network lives in module {module.name if module else need.module}"
            if not need.switched and host.module == need.module:
                tors = {t for t, n in need.span_ports.items() if n > 0}
                if tors and host.tor not in tors:
                    tor = cluster.switches.get(next(iter(tors)))
                    return (
                        f"routed-clos confines the VLAN to ToR "
                        f"{tor.name if tor else next(iter(tors))}"
                    )
        return None
