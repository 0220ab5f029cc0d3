"""A first-match ACL evaluator over the ``tor-acl`` model: how a switch would judge a packet.

Written for tests from the switch's documented behaviour, independent of how
:mod:`fuyun.policy.render._tor` builds entries, so it can catch the builder lying.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fuyun.policy.render._tor import Addr, Entry, ObjectGroup
from fuyun.verify.evaluate import Service

EPHEMERAL = 40000


@dataclass(frozen=True)
class Packet:
    src: str
    dst: str
    protocol: str  # tcp | udp | icmp
    sport: int | None = None
    dport: int | None = None
    ack: bool = False  # what "established" looks at
    icmp_type: int | None = None

    @classmethod
    def first(cls, src: str, dst: str, svc: Service) -> Packet:
        """The first packet of a flow: a SYN, a datagram, an echo request."""
        if svc.protocol == "icmp":
            return cls(src, dst, "icmp", icmp_type=128 if ":" in src else 8)
        return cls(src, dst, svc.protocol, EPHEMERAL, svc.port)

    def reply(self) -> Packet:
        if self.protocol == "icmp":
            return Packet(self.dst, self.src, "icmp", icmp_type=129 if ":" in self.src else 0)
        return Packet(self.dst, self.src, self.protocol, self.dport, self.sport, ack=True)


def _contains(addr: Addr, ip: str, groups: dict[str, ObjectGroup]) -> bool:
    a = ipaddress.ip_address(ip)
    if addr.kind == "any":
        return True
    if addr.kind == "host":
        return a == ipaddress.ip_address(addr.value)
    if addr.kind == "prefix":
        net = ipaddress.ip_network(addr.value)
        return net.version == a.version and a in net
    group = groups[addr.value]  # a reference to a missing group is a bug: KeyError
    return any(a.version == n.version and a in n for n in map(ipaddress.ip_network, group.prefixes))


def _ports(ports: tuple[int, int] | None, port: int | None) -> bool:
    return ports is None or (port is not None and ports[0] <= port <= ports[1])


def matches(e: Entry, p: Packet, groups: dict[str, ObjectGroup]) -> bool:
    if e.protocol not in ("ip", p.protocol):
        return False
    if (e.src_ports or e.dst_ports) and p.protocol not in ("tcp", "udp"):
        return False
    return (
        _contains(e.src, p.src, groups)
        and _contains(e.dst, p.dst, groups)
        and _ports(e.src_ports, p.sport)
        and _ports(e.dst_ports, p.dport)
        and (not e.established or p.ack)
        and (e.icmp_type is None or e.icmp_type == p.icmp_type)
    )


def decide(entries: list[Entry], p: Packet, groups: dict[str, ObjectGroup]) -> str:
    """The first matching entry's action; no match is the implicit deny."""
    return next((e.action for e in entries if matches(e, p, groups)), "deny")
