"""Evaluating rules against a flow: the one place that says what a Match matches."""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache

from fuyun.policy.ir import Action, AddressSet, Match, Rule


@dataclass(frozen=True, order=True)
class Service:
    """A probe: a protocol and (for tcp/udp) one destination port."""

    protocol: str
    port: int | None = None

    def __str__(self) -> str:
        return self.protocol if self.port is None else f"{self.protocol}/{self.port}"


@lru_cache(maxsize=1 << 18)
def _address(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


@lru_cache(maxsize=1 << 16)
def _network(cidr: str) -> tuple[int, int, int]:
    network = ipaddress.ip_network(cidr)
    return network.version, int(network.network_address), int(network.netmask)


def _in_cidr(ip: str, cidr: str) -> bool:
    # Parsed once per address and per prefix: classification asks about every
    # (endpoint, CIDR) pair of a VRF, far more pairs than any cache of pairs holds.
    version, value = _address(ip)
    net_version, net, mask = _network(cidr)
    return version == net_version and value & mask == net


def family_of(ip: str) -> int:
    return 6 if ":" in ip else 4


def matches_remote(match: Match, remote_ip: str, sets: dict[str, AddressSet]) -> bool:
    """The address half of a match: family, remote set or CIDR — independent of the service."""
    if family_of(remote_ip) != match.family:
        return False
    if match.remote_set is not None:
        s = sets.get(match.remote_set)
        return s is not None and remote_ip in s.addresses
    if match.remote_cidr is not None:
        return _in_cidr(remote_ip, match.remote_cidr)
    return True


def matches_service(match: Match, service: Service) -> bool:
    """The service half of a match: protocol and destination port range."""
    if match.protocol != "any" and match.protocol != service.protocol:
        return False
    ports = match.ports()
    return ports is None or (service.port is not None and ports[0] <= service.port <= ports[1])


def matches(match: Match, remote_ip: str, service: Service, sets: dict[str, AddressSet]) -> bool:
    return matches_service(match, service) and matches_remote(match, remote_ip, sets)


def for_remote(
    rules: tuple[Rule, ...], remote_ip: str, sets: dict[str, AddressSet]
) -> tuple[Rule, ...]:
    """The rules that can match traffic with ``remote_ip`` at all, in order.

    Filtering on the address once and then deciding every probe service over what is
    left (:func:`decisions`) gives :func:`decide`'s answers without re-testing set
    membership and CIDRs for every service.
    """
    return tuple(r for r in rules if matches_remote(r.match, remote_ip, sets))


def decide(
    rules: tuple[Rule, ...], remote_ip: str, service: Service, sets: dict[str, AddressSet]
) -> Rule | None:
    """The rule that decides a flow: the first matching deny, else the first allow; None denies."""
    allow: Rule | None = None
    for rule in rules:
        if matches(rule.match, remote_ip, service, sets):
            if rule.action is Action.DENY:
                return rule
            if allow is None:
                allow = rule
    return allow


def probes(rules: list[Rule]) -> list[Service]:
    """Services that cover every distinction the rules make (one per port interval)."""
    bounds: dict[str, set[int]] = {"tcp": {1}, "udp": {1}}
    for r in rules:
        ports = r.match.ports()
        if ports is None:
            continue
        for proto in ("tcp", "udp") if r.match.protocol == "any" else (r.match.protocol,):
            if proto in bounds:
                bounds[proto].add(ports[0])
                if ports[1] < 65535:
                    bounds[proto].add(ports[1] + 1)
    out = [Service("icmp")]
    for proto, points in bounds.items():
        out.extend(Service(proto, p) for p in sorted(points) if 1 <= p <= 65535)
    return out


class ServiceIndex:
    """Probe services laid out so a rule's matches are index ranges, found by bisection.

    :func:`decisions` then decides every service for a list of rules in one pass over
    the rules, instead of one pass per service.
    """

    def __init__(self, services: list[Service]) -> None:
        self.services = services
        self._by_protocol: dict[str, tuple[int, list[int]]] = {}
        self._portless: dict[str, list[int]] = {}
        for i, svc in enumerate(services):
            if svc.port is None:
                self._portless.setdefault(svc.protocol, []).append(i)
        for proto in {s.protocol for s in services if s.port is not None}:
            indices = [i for i, s in enumerate(services) if s.protocol == proto and s.port]
            ports = [services[i].port or 0 for i in indices]
            if indices != list(range(indices[0], indices[0] + len(indices))) or ports != sorted(
                ports
            ):
                raise ValueError(f"{proto} probes must be contiguous and sorted by port")
            self._by_protocol[proto] = (indices[0], ports)
        self._ranges: dict[Match, list[tuple[int, int]]] = {}

    def ranges(self, match: Match) -> list[tuple[int, int]]:
        """Half-open index ranges of the services ``match`` matches (protocol and ports)."""
        cached = self._ranges.get(match)
        if cached is not None:
            return cached
        protocols = (
            [*self._by_protocol, *self._portless] if match.protocol == "any" else [match.protocol]
        )
        ports = match.ports()
        out: list[tuple[int, int]] = []
        for proto in protocols:
            if proto in self._by_protocol:
                start, sorted_ports = self._by_protocol[proto]
                if ports is None:
                    out.append((start, start + len(sorted_ports)))
                else:
                    lo = bisect_left(sorted_ports, ports[0])
                    hi = bisect_right(sorted_ports, ports[1])
                    if lo < hi:
                        out.append((start + lo, start + hi))
            if ports is None:
                out.extend((i, i + 1) for i in self._portless.get(proto, ()))
        self._ranges[match] = out
        return out


def decisions(candidates: tuple[Rule, ...], index: ServiceIndex) -> list[Rule | None]:
    """:func:`decide` (first matching deny, else first allow) for every service at once."""
    result: list[Rule | None] = [None] * len(index.services)
    denied = [False] * len(index.services)
    for rule in candidates:
        deny = rule.action is Action.DENY
        for lo, hi in index.ranges(rule.match):
            for i in range(lo, hi):
                if deny:
                    if not denied[i]:
                        result[i], denied[i] = rule, True
                elif result[i] is None:
                    result[i] = rule
    return result
