"""Switch tables: attaching the VM's ports keeps every MAC, ARP and VLAN table within limits.

The same model as :mod:`fuyun.ipam.l2`: a ToR that joins a span learns the VLAN
and every MAC in it; every switch in the span learns the new MAC; the gateway
switch (aggregation pair in a switched CLOS, the ToR in a routed one) adds an
ARP entry per address.
"""

from collections import defaultdict

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot

_TABLES = (
    ("mac", "used_mac", "mac_capacity"),
    ("arp", "used_arp", "arp_capacity"),
    ("VLAN", "used_vlans", "vlan_capacity"),
)


class SwitchCapacityFilter:
    name = "switch-capacity"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        if not req.networks:
            return None
        add: dict[object, list[int]] = defaultdict(lambda: [0, 0, 0])
        for need in req.networks:
            in_span = need.span_ports.get(host.tor, 0) > 0
            existing = need.ports
            tor = add[host.tor]
            if not in_span:
                tor[2] += 1
                tor[0] += existing
            tor[0] += 1
            module = cluster.modules.get(need.module)
            aggs = module.aggregation if module and need.switched else ()
            for agg in aggs:
                a = add[agg]
                if existing == 0:
                    a[2] += 1
                a[0] += 1
                a[1] += need.ips
            if not aggs:
                tor[1] += need.ips
        for sw_id, (mac, arp, vlans) in add.items():
            sw = cluster.switches.get(sw_id)  # type: ignore[arg-type]
            if sw is None:
                continue
            for (label, used, cap), delta in zip(_TABLES, (mac, arp, vlans), strict=True):
                if delta and getattr(sw, used) + delta > getattr(sw, cap):
                    return (
                        f"switch {sw.name}: {label} table would hold "
                        f"{getattr(sw, used) + delta} of {getattr(sw, cap)}"
                    )
        return None
