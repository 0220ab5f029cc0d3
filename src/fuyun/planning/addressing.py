"""IPAM on the in-memory copy: carving, VLANs and growth, with the same math as the store.

Subnet sizes come from :func:`fuyun.ipam.subnets.layout`, carving from
:func:`fuyun.ipam.subnets.next_free_prefix`, VLAN ids from
:func:`fuyun.ipam.vlans.next_free_vlan` — the functions the live service uses —
and growth follows a network's strategy (``secondary``, ``new-vlan``, ``refuse``).
A plan only ever allocates, so "lowest free" can resume from a low-water mark
instead of sweeping everything below it again: carving stays O(1) amortised.
"""

from __future__ import annotations

import bisect
import ipaddress
import uuid
from dataclasses import dataclass, field

from fuyun.ipam.addresses import IPNetwork, span_of, to_address
from fuyun.ipam.subnets import layout, next_free_prefix
from fuyun.ipam.vlans import next_free_vlan
from fuyun.planning.world import VlanPoolParams
from fuyun.scheduler.model import NetworkNeed


class Exhausted(Exception):
    """An address or VLAN could not be had; ``resource`` says which kind."""

    def __init__(self, resource: str, detail: str):
        super().__init__(detail)
        self.resource = resource
        self.detail = detail


class AddressPool:
    """A site aggregate (or a tenant's private pool) that subnets are carved from."""

    def __init__(self, name: str, parent: IPNetwork, taken: list[IPNetwork] | None = None):
        self.name = name
        self.parent = parent
        self.taken: list[IPNetwork] = sorted(taken or [], key=lambda n: int(n.network_address))
        self._lasts = [int(n.broadcast_address) for n in self.taken]
        self._marks: dict[int, int] = {}
        self.carved_addresses = 0

    @property
    def size(self) -> int:
        return self.parent.num_addresses

    def carve(self, prefix_len: int) -> IPNetwork | None:
        first = span_of(self.parent).first
        mark = self._marks.get(prefix_len, first)
        below: list[IPNetwork] = []
        if mark > first:
            lo, hi = (
                to_address(first, self.parent.version),
                to_address(mark - 1, self.parent.version),
            )
            below = list(ipaddress.summarize_address_range(lo, hi))  # type: ignore[arg-type]
        start = bisect.bisect_left(self._lasts, mark)
        net = next_free_prefix(self.parent, below + self.taken[start:], prefix_len)
        if net is None:
            self._marks[prefix_len] = span_of(self.parent).last + 1
            return None
        at = bisect.bisect_left(self._lasts, int(net.broadcast_address))
        self.taken.insert(at, net)
        self._lasts.insert(at, int(net.broadcast_address))
        self._marks[prefix_len] = int(net.network_address)
        self.carved_addresses += net.num_addresses
        return net


class VlanPool:
    """One module's VLAN pool; ids are never given back during a plan."""

    def __init__(self, params: VlanPoolParams, taken: set[int] | None = None):
        self.params = params
        self.taken = set(taken or ())
        self._cursor = params.first
        self.used = len(self.taken)

    def allocate(self) -> int | None:
        p = self.params
        vlan = next_free_vlan(self._cursor, p.last, p.reserved, self.taken)
        if vlan is None:
            return None
        self._cursor = vlan + 1
        self.used += 1
        return vlan


@dataclass
class SubnetState:
    cidr: IPNetwork
    capacity: int
    reserved: int
    growth: bool  # made by growth, so its reserved addresses are the strategy's cost
    used: int = 0


@dataclass
class SegmentState:
    vlan: int
    span: dict[uuid.UUID, int] = field(default_factory=dict)  # ToR -> ports below it
    subnets: list[SubnetState] = field(default_factory=list)


@dataclass
class NetworkState:
    index: int
    tenant: int
    module: uuid.UUID
    switched: bool
    growth: str
    prefix_len: int
    pool: AddressPool
    segments: list[SegmentState] = field(default_factory=list)
    need: NetworkNeed | None = None

    def refresh_need(self) -> NetworkNeed:
        """The scheduler's view of the newest segment (the one new ports join)."""
        self.need = self.need_for(len(self.segments) - 1)
        return self.need

    def need_for(self, segment: int) -> NetworkNeed:
        """What a port of ``segment`` asks of a host; the span is the live one."""
        seg = self.segments[segment]
        return NetworkNeed(uuid.UUID(int=self.index), self.module, self.switched, seg.span, 1)


class Addressing:
    """Per-module VLAN pools and per-site (or per-tenant) address pools."""

    def __init__(self, vlan_pools: dict[uuid.UUID, VlanPool]):
        self.vlan_pools = vlan_pools
        self.growth_subnets = 0
        self.growth_vlans = 0

    def open_network(self, net: NetworkState, module_name: str) -> None:
        """The network's first VLAN and subnet, or :class:`Exhausted`."""
        self._new_segment(net, module_name, growth=False)

    def allocate(self, net: NetworkState, module_name: str) -> tuple[int, SubnetState]:
        """One address in ``net``: (segment index, subnet); grows the network when full."""
        seg = net.segments[-1]
        for sub in reversed(seg.subnets):
            if sub.used < sub.capacity:
                sub.used += 1
                return len(net.segments) - 1, sub
        if net.growth == "refuse":
            raise Exhausted("subnet", f"network {net.index}: its subnets are full (growth refuse)")
        if net.growth == "secondary":
            seg.subnets.append(self._carve(net, growth=True))
            self.growth_subnets += 1
        else:
            self._new_segment(net, module_name, growth=True)
            self.growth_vlans += 1
            self.growth_subnets += 1
        sub = net.segments[-1].subnets[-1]
        sub.used += 1
        return len(net.segments) - 1, sub

    def _new_segment(self, net: NetworkState, module_name: str, *, growth: bool) -> None:
        vlan = self.vlan_pools[net.module].allocate()
        if vlan is None:
            raise Exhausted("vlan-pool", f"VLAN pool of {module_name} is exhausted")
        seg = SegmentState(vlan)
        seg.subnets.append(self._carve(net, growth=growth))
        net.segments.append(seg)
        net.refresh_need()

    def _carve(self, net: NetworkState, *, growth: bool) -> SubnetState:
        cidr = net.pool.carve(net.prefix_len)
        if cidr is None:
            raise Exhausted(
                "ip-space", f"no free /{net.prefix_len} left in {net.pool.name} ({net.pool.parent})"
            )
        lay = layout(cidr)
        return SubnetState(cidr, lay.capacity, lay.reserved, growth)
