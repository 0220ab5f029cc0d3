"""Switch tables: attaching the VM's ports keeps every MAC, ARP and VLAN table within limits.

The same model as :mod:`fuyun.ipam.l2`: a ToR that joins a span learns the VLAN
and every MAC in it; every switch in the span (the other ToRs too) learns the new MAC; the gateway
switch (aggregation pair in a switched CLOS, the ToR in a routed one) adds an
ARP entry per address.
"""

from collections import defaultdict

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot, NetworkNeed

_TABLES = (
    ("mac", "used_mac", "mac_capacity"),
    ("arp", "used_arp", "arp_capacity"),
    ("VLAN", "used_vlans", "vlan_capacity"),
)


#: Per decision: the span's ports, whether aggregation switches carry the VLAN, their
#: refusal if any, and the span's ToRs that cannot learn one more MAC (with why).
_Shared = tuple[int, bool, str | None, list[tuple[object, str]]]


class SwitchCapacityFilter:
    name = "switch-capacity"

    def __init__(self) -> None:
        # (the request being walked, what holds for every candidate): one tuple, so a
        # thread reading it never pairs one request with another's numbers.
        self._state: tuple[Request, _Shared] | None = None

    def prepare(self, cluster: Cluster, req: Request | None) -> None:
        """Per decision: what does not depend on the host, computed once (``None`` forgets).

        For one network, the aggregation switches' answer and the span's ToRs that
        cannot learn one more MAC are the same for every candidate; only the
        candidate's own ToR differs. Kept only while the framework walks ``req``.
        """
        self._state = None
        if req is None or len(req.networks) != 1:
            return
        need = req.networks[0]
        module = cluster.modules.get(need.module)
        aggs = module.aggregation if module and need.switched else ()
        agg_refusal = None
        for agg in aggs:
            agg_refusal = _over(cluster, agg, 1, need.ips, 1 if need.ports == 0 else 0)
            if agg_refusal is not None:
                break
        blocked = []
        for other, ports in need.span_ports.items():
            if ports > 0:
                refusal = _over(cluster, other, 1, 0, 0)
                if refusal is not None:
                    blocked.append((other, refusal))
        self._state = (req, (need.ports, bool(aggs), agg_refusal, blocked))

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        if not req.networks:
            return None
        state = self._state
        if state is not None and state[0] is req:
            return self._prepared(cluster, req.networks[0], host, *state[1])
        if len(req.networks) == 1:
            return self._one(cluster, req.networks[0], host)
        add: dict[object, list[int]] = defaultdict(lambda: [0, 0, 0])
        for need in req.networks:
            for sw_id, delta in _deltas(cluster, need, host):
                row = add[sw_id]
                for i in range(3):
                    row[i] += delta[i]
        for sw_id, (mac, arp, vlans) in add.items():
            refusal = _over(cluster, sw_id, mac, arp, vlans)
            if refusal is not None:
                return refusal
        return None

    @staticmethod
    def _prepared(
        cluster: Cluster,
        need: NetworkNeed,
        host: HostSlot,
        ports: int,
        has_aggs: bool,
        agg_refusal: str | None,
        blocked: list[tuple[object, str]],
    ) -> str | None:
        # The same checks, in the same order, as ``_one``: the host's ToR, the
        # aggregation pair, then every other ToR of the span.
        in_span = need.span_ports.get(host.tor, 0) > 0
        tor = (1 if in_span else ports + 1, 0 if has_aggs else need.ips, 0 if in_span else 1)
        refusal = _over(cluster, host.tor, *tor)
        if refusal is not None:
            return refusal
        if agg_refusal is not None:
            return agg_refusal
        for other, why in blocked:
            if other != host.tor:
                return why
        return None

    def _one(self, cluster: Cluster, need: NetworkNeed, host: HostSlot) -> str | None:
        # The common case (one NIC): no merging of deltas, no allocation per host.
        for sw_id, (mac, arp, vlans) in _deltas(cluster, need, host):
            refusal = _over(cluster, sw_id, mac, arp, vlans)
            if refusal is not None:
                return refusal
        return None


def _deltas(
    cluster: Cluster, need: NetworkNeed, host: HostSlot
) -> list[tuple[object, tuple[int, int, int]]]:
    """(switch, (mac, arp, vlans)) one more port of ``need`` below ``host`` adds."""
    in_span = need.span_ports.get(host.tor, 0) > 0
    existing = need.ports
    module = cluster.modules.get(need.module)
    aggs = module.aggregation if module and need.switched else ()
    tor = (1 if in_span else existing + 1, 0 if aggs else need.ips, 0 if in_span else 1)
    out: list[tuple[object, tuple[int, int, int]]] = [(host.tor, tor)]
    for agg in aggs:
        out.append((agg, (1, need.ips, 1 if existing == 0 else 0)))
    # Every other ToR carrying the VLAN learns the new port's MAC too.
    for other, ports in need.span_ports.items():
        if ports > 0 and other != host.tor:
            out.append((other, (1, 0, 0)))
    return out


def _over(cluster: Cluster, sw_id: object, mac: int, arp: int, vlans: int) -> str | None:
    sw = cluster.switches.get(sw_id)  # type: ignore[call-overload]
    if sw is None:
        return None
    for (label, used, cap), delta in zip(_TABLES, (mac, arp, vlans), strict=True):
        if delta and getattr(sw, used) + delta > getattr(sw, cap):
            return (
                f"switch {sw.name}: {label} table would hold "
                f"{getattr(sw, used) + delta} of {getattr(sw, cap)}"
            )
    return None
