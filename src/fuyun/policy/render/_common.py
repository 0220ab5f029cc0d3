"""What every renderer agrees on: how a Match is read, checked and ordered.

Renderers differ only in syntax. The meaning of a :class:`~fuyun.policy.ir.Match`
is fixed here, in the same terms as :mod:`fuyun.verify.evaluate` (the one place
that evaluates rules), so a rendered device and ``fuyun verify`` never disagree:

- ``protocol="any"`` with a port range means tcp *or* udp to those ports; ``icmp``
  means ICMP for family 4 and ICMPv6 for family 6; ``icmp`` with ports can never
  match (ICMP has no ports) and renders to nothing.
- A port range is the *destination* port of the flow's first packet.
- ``remote_set`` names an address set of the device; ``remote_cidr`` is a prefix;
  neither means any address of the match's family.
- Any matching ``deny`` beats every ``allow``; otherwise one matching ``allow``
  suffices; nothing matching means deny. Rule order among allows is irrelevant,
  so renderers sort rules for deterministic output.

Checks raise :class:`~fuyun.domain.errors.InvalidInput` rather than emitting text
a device would reject halfway through an apply.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import (
    PROTOCOLS,
    Action,
    AddressSet,
    DevicePolicy,
    Endpoint,
    Match,
    Rule,
    device_name,
)

_IFNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_ORIGIN = re.compile(r"^[A-Za-z0-9:._-]{1,120}$")
_DEVICE = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
_SET = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,59}$")


@dataclass(frozen=True)
class Atom:
    """One protocol's worth of a Match: what a single rendered rule can express."""

    family: int
    protocol: str  # "any" | "tcp" | "udp" | "icmp" (ICMPv6 when family is 6)
    ports: tuple[int, int] | None
    remote_set: str | None
    remote_cidr: str | None

    @property
    def remote_any(self) -> bool:
        return self.remote_set is None and self.remote_cidr is None

    def key(self) -> tuple[object, ...]:
        """A total order (None would not compare with a value)."""
        return (
            self.family,
            self.protocol,
            self.ports or (-1, -1),
            self.remote_set or "",
            self.remote_cidr or "",
        )


def atoms(match: Match) -> tuple[Atom, ...]:
    """Split a Match into atoms; ``any`` with ports becomes tcp and udp."""
    ports = match.ports()
    if ports is not None and match.protocol == "icmp":
        return ()
    protocols = (
        ("tcp", "udp") if ports is not None and match.protocol == "any" else (match.protocol,)
    )
    if ports == (0, 65535):
        ports = None  # every port of tcp/udp: the same match, and no wildcard flows in OVS
    cidr = match.remote_cidr
    if cidr is not None and ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
        cidr = None  # 0.0.0.0/0 and ::/0 are "any address of the family"
    return tuple(Atom(match.family, p, ports, match.remote_set, cidr) for p in protocols)


def intersect(a: Atom, b: Atom) -> tuple[str, tuple[int, int] | None] | None:
    """Protocol and ports that both atoms allow (remote sides are not compared)."""
    if a.family != b.family:
        return None
    if a.protocol == "any":
        protocol = b.protocol
    elif b.protocol in ("any", a.protocol):
        protocol = a.protocol
    else:
        return None
    if a.ports is None or b.ports is None:
        ports = a.ports or b.ports
    else:
        lo, hi = max(a.ports[0], b.ports[0]), min(a.ports[1], b.ports[1])
        if lo > hi:
            return None
        ports = (lo, hi)
    return protocol, ports


def rule_key(rule: Rule) -> tuple[object, ...]:
    """A total order on rules (Match's own ordering fails on None next to an int)."""
    m = rule.match
    return (
        rule.action.value,
        m.direction.value,
        m.family,
        m.protocol,
        -1 if m.port_min is None else m.port_min,
        -1 if m.port_max is None else m.port_max,
        m.remote_set or "",
        m.remote_cidr or "",
        rule.origin,
    )


def ordered(rules: Iterable[Rule]) -> tuple[list[Rule], list[Rule]]:
    """(denies, allows), each sorted: the only order the semantics need."""
    rules = sorted(rules, key=rule_key)
    return (
        [r for r in rules if r.action is Action.DENY],
        [r for r in rules if r.action is Action.ALLOW],
    )


def port_device(endpoint: Endpoint) -> str:
    """The port's interface name, defaulting to the name fuyun gives it."""
    return endpoint.device or device_name(endpoint.port_id)


def normal_mac(mac: str) -> str:
    value = mac.strip().lower().replace("-", ":")
    if not _MAC.match(value):
        raise InvalidInput(f"bad MAC address {mac!r}", field="mac")
    return value


def addresses(endpoint: Endpoint, family: int) -> list[str]:
    """The endpoint's addresses of one family, normalised and sorted."""
    out = {ipaddress.ip_address(ip) for ip in endpoint.ips}
    return [str(a) for a in sorted(a for a in out if a.version == family)]


def prefixes(items: Iterable[str], family: int) -> list[str]:
    """Addresses or prefixes collapsed to the fewest non-overlapping prefixes, sorted.

    Interval sets (nftables) reject overlapping elements, and fewer prefixes mean
    fewer flows and ACL entries; collapsing does not change what matches.
    """
    nets = [ipaddress.ip_network(i, strict=False) for i in items]
    nets = [n for n in nets if n.version == family]
    return [str(n) for n in ipaddress.collapse_addresses(nets)]  # type: ignore[type-var]


@lru_cache(maxsize=4096)
def set_prefixes(s: AddressSet) -> tuple[str, ...]:
    """An address set's members as collapsed prefixes; cached, as every rule using the
    set asks again and collapsing thousands of members is not free."""
    return tuple(prefixes(s.addresses, s.family))


def check(policy: DevicePolicy) -> None:
    """Reject what no renderer can express: a clear 422 beats a half-applied device."""
    if not _DEVICE.match(policy.device):
        raise InvalidInput(
            f"device name {policy.device!r} is not a host or switch name", field="device"
        )
    sets = policy.set_by_name()
    macs: dict[str, str] = {}
    devices: set[str] = set()
    for s in policy.sets:
        if s.family not in (4, 6):
            raise InvalidInput(f"set {s.name} has family {s.family}", field="sets")
        if not _SET.match(s.name):
            raise InvalidInput(f"set name {s.name!r} is not an identifier", field="sets")
        for a in s.addresses:
            _network(a, s.family, f"set {s.name}")
    for port in policy.ports:
        e = port.endpoint
        dev = port_device(e)
        if not _IFNAME.match(dev):
            raise InvalidInput(
                f"interface name {dev!r} is not a Linux interface name", field="device"
            )
        if dev in devices:
            raise InvalidInput(f"interface {dev} appears twice on {policy.device}", field="device")
        devices.add(dev)
        mac = normal_mac(e.mac)
        if mac in macs:
            raise InvalidInput(f"MAC {mac} is on both {macs[mac]} and {dev}", field="mac")
        macs[mac] = dev
        if not 0 <= e.vlan <= 4094:
            raise InvalidInput(f"VLAN {e.vlan} of {dev} is out of range", field="vlan")
        for ip in e.ips:
            _network(ip, None, f"port {dev}")
        for rule in (*port.ingress, *port.egress):
            _check_rule(rule, sets)


def _check_rule(rule: Rule, sets: dict[str, AddressSet]) -> None:
    m = rule.match
    where = f"rule {rule.origin}"
    if not _ORIGIN.match(rule.origin):
        raise InvalidInput(f"rule origin {rule.origin!r} has unsafe characters", field="origin")
    if m.family not in (4, 6):
        raise InvalidInput(f"{where}: family must be 4 or 6", field="family")
    if m.protocol not in PROTOCOLS:
        raise InvalidInput(f"{where}: unknown protocol {m.protocol!r}", field="protocol")
    ports = m.ports()
    if ports is not None and not 0 <= ports[0] <= ports[1] <= 65535:
        raise InvalidInput(f"{where}: bad port range {ports}", field="port_min")
    if m.remote_set is not None and m.remote_cidr is not None:
        raise InvalidInput(f"{where}: both a remote set and a remote CIDR", field="remote")
    if m.remote_set is not None:
        s = sets.get(m.remote_set)
        if s is None:
            raise InvalidInput(f"{where}: unknown address set {m.remote_set}", field="sets")
        if s.family != m.family:
            raise InvalidInput(f"{where}: set {m.remote_set} is of another family", field="sets")
    if m.remote_cidr is not None:
        _network(m.remote_cidr, m.family, where)


def _network(text: str, family: int | None, where: str) -> None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidInput(f"{where}: bad address {text!r}", field="address") from exc
    if family is not None and net.version != family:
        raise InvalidInput(f"{where}: {text} is not IPv{family}", field="address")


def port_ranges_to_masks(lo: int, hi: int) -> list[tuple[int, int]]:
    """Cover [lo, hi] with (value, mask) pairs of 16-bit prefixes, fewest first-fit.

    OpenFlow matches ports only by value/mask; a range costs at most 30 value/mask flows.
    """
    out: list[tuple[int, int]] = []
    while lo <= hi:
        size = 1
        while lo % (size * 2) == 0 and lo + size * 2 - 1 <= hi and size < 0x10000:
            size *= 2
        out.append((lo, 0xFFFF & ~(size - 1)))
        lo += size
    return out
