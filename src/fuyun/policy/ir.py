"""The enforcement IR: what one device must enforce, independent of how it is rendered.

The compiler turns intent (security groups, rules, memberships, global rules) into
one :class:`DevicePolicy` per enforcement device: a host's vswitch, a guest (for
``vm-iptables``) or a ToR. Renderers turn a DevicePolicy into nftables, OpenFlow,
iptables-restore or switch text; :mod:`fuyun.verify` evaluates the same IR to
prove reachability. Nothing here knows about the store or any renderer.

Remote addresses are named sets (a security group's member addresses per family)
or CIDRs, so a rule costs one entry however many members its remote group has —
set lookups, not rules x members.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class Action(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


PROTOCOLS = ("any", "tcp", "udp", "icmp")


@dataclass(frozen=True)
class Match:
    """Traffic to or from a port: family, protocol, destination port range, remote side.

    ``remote_set`` names an :class:`AddressSet`; ``remote_cidr`` is a literal
    prefix; neither means any address.
    """

    direction: Direction
    family: int  # 4 or 6
    protocol: str = "any"
    port_min: int | None = None
    port_max: int | None = None
    remote_set: str | None = None
    remote_cidr: str | None = None

    def ports(self) -> tuple[int, int] | None:
        if self.port_min is None:
            return None
        return self.port_min, self.port_max if self.port_max is not None else self.port_min

    def sort_key(self) -> tuple[object, ...]:
        """A total order for deterministic output (None sorts first)."""
        return (
            self.direction.value,
            self.family,
            self.protocol,
            self.port_min or -1,
            self.port_max or -1,
            self.remote_set or "",
            self.remote_cidr or "",
        )


@dataclass(frozen=True)
class Rule:
    action: Action
    match: Match
    origin: str  # "sg:<rule id>", "global:<rule id>", "default:..." — what to blame


@dataclass(frozen=True)
class AddressSet:
    name: str  # e.g. "sg_<group id hex>_v4"
    family: int
    addresses: frozenset[str]


@dataclass(frozen=True)
class Endpoint:
    """A VM port as the enforcement point sees it."""

    port_id: uuid.UUID
    tenant_id: uuid.UUID
    vrf_id: uuid.UUID
    network_id: uuid.UUID
    segment_id: uuid.UUID
    vlan: int
    mac: str
    ips: tuple[str, ...]
    groups: frozenset[uuid.UUID]
    host: str | None = None
    device: str = ""  # interface name on the host (e.g. "fy" + port id prefix)
    # The network's DHCP service addresses (its subnets' gateways) when it serves DHCP.
    dhcp: tuple[str, ...] = ()

    def addresses(self, family: int) -> list[str]:
        return [ip for ip in self.ips if ipaddress.ip_address(ip).version == family]

    @property
    def binding(self) -> Binding:
        return Binding(self.mac, self.ips, self.dhcp)


@dataclass(frozen=True)
class Binding:
    """What a port may send as, and the one DHCP service it may talk to.

    Every enforcement point renders it before any tenant rule (anti-spoofing):
    frames from the port carry ``mac``; IP packets carry one of ``ips`` as source
    (DHCP's unspecified source excepted); DHCP client traffic (v4 udp 68->67, v6
    546->547) goes to the service's addresses in ``dhcp_servers`` or to the
    protocol's broadcast/multicast address, and DHCP replies (67->68, 547->546)
    are accepted only from ``dhcp_servers``. No DHCP service, no DHCP: the
    default deny holds. A port never answers as a DHCP server.
    """

    mac: str
    ips: tuple[str, ...]
    dhcp_servers: tuple[str, ...]

    def addresses(self, family: int) -> list[str]:
        return [ip for ip in self.ips if ipaddress.ip_address(ip).version == family]

    def servers(self, family: int) -> list[str]:
        return [ip for ip in self.dhcp_servers if ipaddress.ip_address(ip).version == family]


DHCP_CLIENT = {4: (68, 67), 6: (546, 547)}  # (client port, server port)
DHCP_ALL_SERVERS = {4: "255.255.255.255", 6: "ff02::1:2"}


@dataclass(frozen=True)
class PortPolicy:
    """Ordered rules for one port: global denies, then allows; the default is deny."""

    endpoint: Endpoint
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]


@dataclass(frozen=True, order=True)
class Gateway:
    """A subnet's gateway address, routed in its tenant's VRF (a ToR's SVI on that VLAN)."""

    vlan: int
    vrf_id: uuid.UUID
    cidr: str
    address: str

    @property
    def interface(self) -> str:
        """The address with the subnet's prefix length, as an interface carries it."""
        return f"{self.address}/{self.cidr.split('/')[1]}"


@dataclass(frozen=True, order=True)
class Route:
    """A route leaked into ``vrf_id``: ``prefix`` via ``nexthop``, resolved in ``via_vrf_id``.

    Only an approved route leak makes one (:mod:`fuyun.netsvc.leaks`); ``leak`` is its id.
    """

    vrf_id: uuid.UUID
    prefix: str
    via_vrf_id: uuid.UUID
    nexthop: str
    leak: str


@dataclass(frozen=True, order=True)
class Trunk:
    """A ToR's host-facing interface: a trunk carrying only the VLANs of that host's ports."""

    interface: str  # e.g. "Ethernet1/7"
    host: str
    vlans: tuple[int, ...]

    def sort_key(self) -> tuple[object, ...]:
        """Interfaces in port order: ``Ethernet1/2`` before ``Ethernet1/10``."""
        parts = re.split(r"(\d+)", self.interface)
        return tuple((int(x), "") if x.isdigit() else (-1, x) for x in parts), self.host


@dataclass(frozen=True)
class DevicePolicy:
    """Everything one device enforces."""

    device: str  # host or switch name
    enforcement_point: str  # vswitch | vm-iptables | tor-acl
    ports: tuple[PortPolicy, ...]
    sets: tuple[AddressSet, ...] = field(default_factory=tuple)
    # ToR only: VLANs carried, per-tenant VRFs, trunk members.
    vlans: tuple[int, ...] = ()
    # ToR only: the gateways of the local networks' subnets (SVIs in the tenant VRF).
    gateways: tuple[Gateway, ...] = ()
    # ToR only: one trunk per host cabled to it, allowed VLANs = that host's ports' VLANs.
    trunks: tuple[Trunk, ...] = ()
    # ToR only: inter-VRF routes of approved route leaks, for VRFs routed here.
    routes: tuple[Route, ...] = ()

    def set_by_name(self) -> dict[str, AddressSet]:
        return {s.name: s for s in self.sets}


def set_name(group_id: uuid.UUID, family: int) -> str:
    return f"sg_{group_id.hex}_v{family}"


def device_name(port_id: uuid.UUID) -> str:
    """The port's interface on its host: 15 characters at most, as Linux requires."""
    return f"fy{port_id.hex[:11]}"


# -- serialisation: the IR is stored as a device's desired state ---------------------------


def _match_dict(m: Match) -> dict[str, object]:
    return {
        "d": m.direction.value,
        "f": m.family,
        "p": m.protocol,
        "lo": m.port_min,
        "hi": m.port_max,
        "set": m.remote_set,
        "cidr": m.remote_cidr,
    }


def _match(d: dict[str, object]) -> Match:
    return Match(
        Direction(str(d["d"])),
        int(d["f"]),
        str(d["p"]),  # type: ignore[call-overload]
        d["lo"],
        d["hi"],
        d["set"],
        d["cidr"],
    )  # type: ignore[arg-type]


def _rules(rules: tuple[Rule, ...]) -> list[dict[str, object]]:
    return [{"a": r.action.value, "m": _match_dict(r.match), "o": r.origin} for r in rules]


def _list_key(rule_list: dict[str, list[dict[str, Any]]]) -> tuple[object, ...]:
    """A rule list's value as a hashable key: equal lists share one entry of a document."""
    return tuple(
        tuple(
            (r["a"], r["o"], m["d"], m["f"], m["p"], m["lo"], m["hi"], m["set"], m["cidr"])
            for r in rule_list[side]
            for m in (r["m"],)
        )
        for side in ("in", "out")
    )


class RuleLists:
    """The rule lists of one document, each stored once, numbered in order of first use.

    Ports with the same rules (the same groups, as a rule almost always shows) refer
    to one entry: a ToR's document shrinks about fourfold, and so do encoding it,
    hashing it and writing it.
    """

    def __init__(self) -> None:
        self.items: list[dict[str, list[dict[str, Any]]]] = []
        self._by_key: dict[tuple[object, ...], int] = {}
        # Looked up by identity before by value: the compiler shares one pair of tuples
        # among the ports of a group set, a stored document one dict per list. Each entry
        # holds its objects, so no id is reused by another object while this lives.
        self._by_id: dict[tuple[int, int], tuple[object, object, int]] = {}
        self._by_json_id: dict[int, tuple[object, int]] = {}

    def of_rules(self, ingress: tuple[Rule, ...], egress: tuple[Rule, ...]) -> int:
        pair = (id(ingress), id(egress))
        known = self._by_id.get(pair)
        if known is not None:
            return known[2]
        index = self._by_value({"in": _rules(ingress), "out": _rules(egress)})  # type: ignore[dict-item]
        self._by_id[pair] = (ingress, egress, index)
        return index

    def of_json(self, rule_list: dict[str, list[dict[str, Any]]]) -> int:
        known = self._by_json_id.get(id(rule_list))
        if known is not None:
            return known[1]
        index = self._by_value(rule_list)
        self._by_json_id[id(rule_list)] = (rule_list, index)
        return index

    def _by_value(self, rule_list: dict[str, list[dict[str, Any]]]) -> int:
        key = _list_key(rule_list)
        index = self._by_key.get(key)
        if index is None:
            index = len(self.items)
            self.items.append(rule_list)
            self._by_key[key] = index
        return index


def port_key(port: dict[str, Any]) -> tuple[str, str]:
    """A stored port entry's place in its document: port id, then host (a moving port
    is enforced on both of its hosts). A UUID's text sorts as the UUID does."""
    return port["port"], port["host"] or ""


def endpoint_json(e: Endpoint) -> dict[str, Any]:
    """A port entry of a document without its rules (``"r"``, added by the document)."""
    return {
        "port": str(e.port_id),
        "tenant": str(e.tenant_id),
        "vrf": str(e.vrf_id),
        "network": str(e.network_id),
        "segment": str(e.segment_id),
        "vlan": e.vlan,
        "mac": e.mac,
        "ips": list(e.ips),
        "groups": sorted(str(g) for g in e.groups),
        "host": e.host,
        "dev": e.device,
        **({"dhcp": list(e.dhcp)} if e.dhcp else {}),
    }


def set_json(s: AddressSet) -> dict[str, Any]:
    return {"n": s.name, "f": s.family, "a": sorted(s.addresses)}


def document(
    policy: DevicePolicy,
    sets: list[dict[str, Any]],
    rule_lists: list[dict[str, list[dict[str, Any]]]],
    ports: list[dict[str, Any]],
) -> dict[str, object]:
    """The stored form of a device: ``policy`` gives the device-wide parts (name,
    enforcement point, VLANs, gateways, trunks); ports, their rule lists and the sets
    are given already encoded, so a ToR's unchanged entries can be kept as stored."""
    out: dict[str, object] = {
        "device": policy.device,
        "ep": policy.enforcement_point,
        "vlans": list(policy.vlans),
        "sets": sets,
        "rl": rule_lists,
        "ports": ports,
    }
    if policy.gateways:  # absent when empty, so devices without SVIs keep their digest
        out["gw"] = [
            {"vlan": g.vlan, "vrf": str(g.vrf_id), "cidr": g.cidr, "ip": g.address}
            for g in policy.gateways
        ]
    if policy.trunks:  # absent when empty, as for gateways
        out["trunks"] = [
            {"if": t.interface, "host": t.host, "vlans": list(t.vlans)} for t in policy.trunks
        ]
    if policy.routes:  # absent when empty, as for gateways
        out["routes"] = [
            {"vrf": str(r.vrf_id), "p": r.prefix, "via": str(r.via_vrf_id), "nh": r.nexthop,
             "leak": r.leak}
            for r in policy.routes
        ]  # fmt: skip
    return out


def to_json(policy: DevicePolicy) -> dict[str, object]:
    """The stored form: each distinct rule list once (``"rl"``), each port naming its
    list by index (``"r"``). :func:`from_json` inverts it exactly."""
    lists = RuleLists()
    ports = [
        {**endpoint_json(p.endpoint), "r": lists.of_rules(p.ingress, p.egress)}
        for p in policy.ports
    ]
    return document(policy, [set_json(s) for s in policy.sets], lists.items, ports)


def from_json(data: dict[str, object]) -> DevicePolicy:
    def rules(items: list[dict[str, object]]) -> tuple[Rule, ...]:
        return tuple(
            Rule(Action(str(r["a"])), _match(r["m"]), str(r["o"]))  # type: ignore[arg-type]
            for r in items
        )

    # Ports that share a rule list share its tuples, as the compiler's ports do. A
    # document written before rule lists were shared carries each port's own rules.
    lists = [(rules(rl["in"]), rules(rl["out"])) for rl in data.get("rl", ())]  # type: ignore[attr-defined]
    ports = []
    for p in data["ports"]:  # type: ignore[attr-defined]
        e = Endpoint(
            uuid.UUID(p["port"]),
            uuid.UUID(p["tenant"]),
            uuid.UUID(p["vrf"]),
            uuid.UUID(p["network"]),
            uuid.UUID(p["segment"]),
            int(p["vlan"]),
            str(p["mac"]),
            tuple(p["ips"]),
            frozenset(uuid.UUID(g) for g in p["groups"]),
            p.get("host"),
            str(p.get("dev", "")),
            tuple(p.get("dhcp", ())),
        )
        ingress, egress = lists[p["r"]] if "r" in p else (rules(p["in"]), rules(p["out"]))
        ports.append(PortPolicy(e, ingress, egress))
    sets = tuple(AddressSet(str(s["n"]), int(s["f"]), frozenset(s["a"])) for s in data["sets"])  # type: ignore[attr-defined]
    gateways = tuple(
        Gateway(int(g["vlan"]), uuid.UUID(g["vrf"]), str(g["cidr"]), str(g["ip"]))
        for g in data.get("gw", ())  # type: ignore[attr-defined]
    )
    trunks = tuple(
        Trunk(str(t["if"]), str(t["host"]), tuple(int(v) for v in t["vlans"]))
        for t in data.get("trunks", ())  # type: ignore[attr-defined]
    )
    routes = tuple(
        Route(uuid.UUID(r["vrf"]), str(r["p"]), uuid.UUID(r["via"]), str(r["nh"]), str(r["leak"]))
        for r in data.get("routes", ())  # type: ignore[attr-defined]
    )
    return DevicePolicy(
        str(data["device"]),
        str(data["ep"]),
        tuple(ports),
        sets,
        tuple(data.get("vlans", ())),  # type: ignore[call-overload]
        gateways,
        trunks,
        routes,
    )
