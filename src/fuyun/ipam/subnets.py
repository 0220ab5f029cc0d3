"""Which addresses of a subnet may be handed out, and how many are lost to boundaries.

The rules (NetBox states them on the model; so do we, in one place):

- IPv4: the network and broadcast addresses are never usable (except /31 and /32,
  RFC 3021); IPv6: the subnet-router anycast address (the network address) is not.
- The gateway is the first usable address unless given.
- ``reserve_first`` more addresses after the gateway are kept for infrastructure
  (e.g. a VRRP pair, a DHCP server).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from fuyun.domain.errors import InvalidInput
from fuyun.ipam.addresses import IPAddress, IPNetwork, Span, span_of

MAX_RESERVE_FIRST = 1024


@dataclass(frozen=True)
class SubnetLayout:
    network: IPNetwork
    gateway: int | None
    usable: Span | None  # allocatable addresses, gateway and reserved ones excluded
    reserved: int  # addresses never allocatable (boundaries, gateway, infrastructure)

    @property
    def family(self) -> int:
        return self.network.version

    @property
    def size(self) -> int:
        return self.network.num_addresses

    @property
    def capacity(self) -> int:
        return 0 if self.usable is None else self.usable.size


def layout(
    network: IPNetwork,
    *,
    gateway: IPAddress | None = None,
    reserve_first: int = 0,
    with_gateway: bool = True,
) -> SubnetLayout:
    """Lay out ``network``: gateway, reserved addresses and the allocatable span."""
    if not 0 <= reserve_first <= MAX_RESERVE_FIRST:
        raise InvalidInput(f"reserve_first must be 0-{MAX_RESERVE_FIRST}", field="reserve_first")
    whole = span_of(network)
    first, last = whole.first, whole.last
    if network.version == 4 and network.prefixlen < 31:
        first, last = first + 1, last - 1
    elif network.version == 6 and network.prefixlen < 127:
        first += 1
    gw: int | None = None
    if with_gateway:
        if gateway is None:
            gw = first
        else:
            if gateway.version != network.version or gateway not in network:
                raise InvalidInput(f"gateway {gateway} is not inside {network}", field="gateway")
            gw = int(gateway)
            if not first <= gw <= last:
                raise InvalidInput(
                    f"gateway {gateway} is a reserved address of {network}", field="gateway"
                )
    start = first
    if gw is not None and gw == first:
        start = first + 1
    start += reserve_first
    usable = Span(start, last) if start <= last else None
    capacity = 0 if usable is None else usable.size
    # A gateway in the middle of the usable span is carved out by the allocator.
    if gw is not None and usable is not None and usable.contains(gw):
        capacity -= 1
    return SubnetLayout(network=network, gateway=gw, usable=usable, reserved=whole.size - capacity)


def free_spans(sub: SubnetLayout) -> list[Span]:
    """The initial free ranges of a new subnet: the usable span minus the gateway."""
    if sub.usable is None:
        return []
    u, gw = sub.usable, sub.gateway
    if gw is None or not u.contains(gw):
        return [u]
    spans = []
    if gw > u.first:
        spans.append(Span(u.first, gw - 1))
    if gw < u.last:
        spans.append(Span(gw + 1, u.last))
    return spans


def next_free_prefix(parent: IPNetwork, taken: list[IPNetwork], prefixlen: int) -> IPNetwork | None:
    """The lowest ``/prefixlen`` inside ``parent`` that overlaps nothing in ``taken``.

    One sweep over the taken children in address order: O(k log k) in the number
    of children, never in the number of addresses.
    """
    if prefixlen < parent.prefixlen or prefixlen > parent.max_prefixlen:
        return None
    size = 1 << (parent.max_prefixlen - prefixlen)
    span = span_of(parent)
    candidate = span.first
    for child in sorted(span_of(t) for t in taken if t.version == parent.version):
        if child.last < candidate:
            continue
        if candidate + size - 1 < child.first:
            break
        # Jump past the child, aligned up to the next block of ``size``.
        candidate = ((child.last + 1 + size - 1) // size) * size
    if candidate + size - 1 > span.last:
        return None
    if parent.version == 4:
        return IPv4Network((candidate, prefixlen))
    return IPv6Network((candidate, prefixlen))
