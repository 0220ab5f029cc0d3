"""Evaluating rules against a flow: the one place that says what a Match matches."""

from __future__ import annotations

import ipaddress
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


@lru_cache(maxsize=65536)
def _in_cidr(ip: str, cidr: str) -> bool:
    address, network = ipaddress.ip_address(ip), ipaddress.ip_network(cidr)
    return address.version == network.version and address in network


def matches(match: Match, remote_ip: str, service: Service, sets: dict[str, AddressSet]) -> bool:
    if ipaddress.ip_address(remote_ip).version != match.family:
        return False
    if match.protocol != "any" and match.protocol != service.protocol:
        return False
    ports = match.ports()
    if ports is not None and (service.port is None or not ports[0] <= service.port <= ports[1]):
        return False
    if match.remote_set is not None:
        s = sets.get(match.remote_set)
        return s is not None and remote_ip in s.addresses
    if match.remote_cidr is not None:
        return _in_cidr(remote_ip, match.remote_cidr)
    return True


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
