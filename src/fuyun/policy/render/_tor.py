"""``tor-acl``: the vendor-neutral model both ToR renderers print.

A ToR enforces with VLAN ACLs, which are stateless and first-match; the IR is
stateful and needs *both* sides' consent. This module bridges the two, once, and
:mod:`.nxos` and :mod:`.comware` only spell the result.

Per VLAN that has endpoints on this ToR ("local"), one ACL per family. Endpoints
with identical rules form a class (an object group); entries, in order:

1. Infrastructure: no DHCP server replies or IPv6 router adverts *from* local
   ports; DHCP (v4/v6) only with the network's DHCP service (the ports'
   Binding: requests to it or to the all-servers address, replies from it;
   none when the network has no service); ICMPv6 ND/MLD pass; ICMP errors to
   local ports pass (path MTU discovery must work for every allowed flow).
2. Replies of every permit below that conntrack would pass: tcp ``established``
   from the service port, ICMP echo reply. They come before the denies because
   a stateful device passes the reply of an allowed flow even where a deny would
   stop a new flow (say, inbound allowed from a range that egress denies); a
   packet with ACK set cannot open a tcp connection.
3. Global denies of every class (``deny``): tenants cannot override them.
4. Intra-VLAN pairs: bridged traffic crosses the ACL once, so for each ordered
   pair of classes the entry permits exactly source-egress AND destination-ingress
   (protocols and ports intersected, each side's remote narrowed to the other's
   addresses).
5. ``deny ip LOCAL LOCAL``: nothing else between local endpoints of the VLAN.
6. Each class's ingress allows (remote -> class) and egress allows (class ->
   remote). Traffic routed between VLANs passes the source VLAN's ACL (its
   egress) and the destination VLAN's ACL (its ingress): the AND of the IR.
   Traffic from another ToR was checked for its egress there.
7. ``deny ip any any``: default deny, written out.

A udp permit that names ports is followed by its reverse (from those ports);
udp without ports (an ``any`` rule) has *no* reply path — a stateless ACL cannot
tell a reply from a new flow, and opening all udp would void the receiver's
ingress policy. udp replies stay behind the denies: one from the service port
could be a new flow into a denied range. VLANs carried without local endpoints
get no filter (transit). VRFs: one per tenant VRF of the local endpoints, named
``fy-`` + the first 16 hex digits of the VRF id.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import (
    DHCP_ALL_SERVERS,
    DHCP_CLIENT,
    AddressSet,
    DevicePolicy,
    Gateway,
    PortPolicy,
    Rule,
    Trunk,
)
from fuyun.policy.render._common import (
    Atom,
    addresses,
    atoms,
    check,
    intersect,
    ordered,
    prefixes,
    set_prefixes,
)

ICMP_ERRORS = {4: (3, 11), 6: (1, 2, 3)}  # unreachable, (packet too big,) time exceeded
ECHO_REPLY = {4: 0, 6: 129}


@dataclass(frozen=True, order=True)
class Addr:
    """An ACL address: ``any``, one ``host``, a ``prefix`` or an object ``group``."""

    kind: str
    value: str = ""


ANY = Addr("any")


@dataclass(frozen=True)
class Entry:
    action: str  # permit | deny
    protocol: str  # ip | tcp | udp | icmp (ICMPv6 in an IPv6 ACL)
    src: Addr
    dst: Addr
    src_ports: tuple[int, int] | None = None
    dst_ports: tuple[int, int] | None = None
    established: bool = False
    icmp_type: int | None = None


@dataclass(frozen=True)
class ObjectGroup:
    name: str
    family: int
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Acl:
    name: str
    vlan: int
    family: int
    sections: tuple[tuple[str, tuple[Entry, ...]], ...]  # (remark, entries)

    def entries(self) -> list[Entry]:
        return [e for _, entries in self.sections for e in entries]

    def runs(self) -> list[Run]:
        """Maximal stretches of one action, in order, each entry with its section remark.

        Switches that accept only ``permit`` in a filter's match list (NX-OS VACLs,
        Comware QoS classifiers) get first-match semantics back from an ordered map
        of (match list, action) pairs, one pair per run.
        """
        out: list[Run] = []
        for remark, entries in self.sections:
            for i, e in enumerate(entries):
                if not out or out[-1].action != e.action:
                    out.append(Run(e.action, []))
                out[-1].entries.append((remark if i == 0 else "", e))
        return out


@dataclass
class Run:
    action: str  # permit (forward) | deny (drop)
    entries: list[tuple[str, Entry]]  # (remark opening a section here, or "", entry)


@dataclass(frozen=True, order=True)
class Svi:
    """A VLAN interface routing a tenant's subnets in its VRF: the networks' gateway."""

    vlan: int
    vrf: str
    addresses: tuple[str, ...]  # "gateway/prefix length", IPv4 first


@dataclass(frozen=True, order=True)
class LeakedRoute:
    """A static route in ``vrf`` to ``prefix`` whose next hop is resolved in ``via``."""

    vrf: str
    prefix: str
    via: str
    nexthop: str


@dataclass(frozen=True)
class TorConfig:
    device: str
    vlans: tuple[int, ...]
    vrfs: tuple[tuple[str, str], ...]  # (name, tenant id)
    groups: tuple[ObjectGroup, ...]
    acls: tuple[Acl, ...]
    svis: tuple[Svi, ...] = ()
    trunks: tuple[Trunk, ...] = ()  # host-facing interfaces, in port order
    # IP source guard: each port's Binding on the interface of the host it runs on.
    bindings: tuple[SourceBinding, ...] = ()
    # Approved route leaks: inter-VRF static routes, by VRF then prefix.
    routes: tuple[LeakedRoute, ...] = ()

    def bindings_on(self, interface: str) -> list[SourceBinding]:
        return [b for b in self.bindings if b.interface == interface]


@dataclass(frozen=True, order=True)
class SourceBinding:
    """A port's (MAC, address) on its VLAN, accepted only from its host's interface."""

    interface: str
    vlan: int
    address: str
    mac: str


def source_bindings(policy: DevicePolicy) -> tuple[SourceBinding, ...]:
    """Every local port's Binding, on the trunk of the host it is bound to.

    A port whose host has no trunk here (an inventory without ToR interfaces) gets
    no binding, and its interface no source guard: nothing is dropped by guessing.
    """
    interface_of = {t.host: t.interface for t in policy.trunks}
    out = set()
    for p in policy.ports:
        interface = interface_of.get(p.endpoint.host or "")
        if interface is None:
            continue
        binding = p.endpoint.binding
        for ip in binding.ips:
            out.add(SourceBinding(interface, p.endpoint.vlan, ip, binding.mac.lower()))
    return tuple(
        sorted(
            out,
            # Tenants reuse addresses: the VLAN and MAC make the order total.
            key=lambda b: (
                Trunk(b.interface, "", ()).sort_key(),
                _ip_key(b.address),
                b.vlan,
                b.mac,
            ),
        )
    )


def _ip_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return address.version, int(address)


def vlan_ranges(vlans: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted VLANs as maximal runs ``(first, last)``: how switches write VLAN lists."""
    out: list[tuple[int, int]] = []
    for v in sorted(set(vlans)):
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def vrf_name(vrf_hex: str) -> str:
    return f"fy-{vrf_hex[:16]}"


def acl_name(vlan: int, family: int) -> str:
    return f"FUYUN{'' if family == 4 else '6'}-VLAN{vlan}"


@dataclass
class _Class:
    name: str
    ports: list[PortPolicy]
    addresses: list[str]

    @property
    def group(self) -> Addr:
        return Addr("group", self.name)


@dataclass
class _Builder:
    policy: DevicePolicy
    sets: dict[str, AddressSet]
    groups: dict[str, ObjectGroup] = field(default_factory=dict)

    def group(self, name: str, family: int, items: list[str]) -> Addr:
        self.groups[name] = ObjectGroup(name, family, tuple(items))
        return Addr("group", name)


def build(policy: DevicePolicy) -> TorConfig:
    """The ToR's VLANs, VRFs, object groups and VLAN ACLs, deterministic."""
    check(policy)
    b = _Builder(policy, policy.set_by_name())
    by_vlan: dict[int, list[PortPolicy]] = defaultdict(list)
    vrfs: dict[str, tuple[object, str]] = {}  # name -> (VRF id, tenant)
    for p in policy.ports:
        by_vlan[p.endpoint.vlan].append(p)
        name = vrf_name(p.endpoint.vrf_id.hex)
        vrf = (p.endpoint.vrf_id, str(p.endpoint.tenant_id))
        if vrfs.setdefault(name, vrf)[0] != vrf[0]:
            raise InvalidInput(f"VRF name {name} would name two VRFs", field="vrf")
    acls = []
    for vlan in sorted(by_vlan):
        for family in (4, 6):
            acls.append(_vlan_acl(b, vlan, family, by_vlan[vlan]))
    for s in policy.sets:  # sets are declared even when no entry survives narrowing
        b.group(s.name, s.family, list(set_prefixes(s)))
    groups = tuple(g for _, g in sorted(b.groups.items()) if g.prefixes)
    svis = _svis(policy, vrfs)  # first: it may declare a VRF
    routes = _routes(policy, vrfs)  # declares the peer VRFs its next hops resolve in
    return TorConfig(
        policy.device,
        tuple(sorted(set(policy.vlans) | set(by_vlan) | {s.vlan for s in svis})),
        tuple(sorted((name, tenant) for name, (_, tenant) in vrfs.items())),
        groups,
        tuple(acls),
        svis,
        policy.trunks,
        source_bindings(policy),
        routes,
    )


def _routes(policy: DevicePolicy, vrfs: dict[str, tuple[object, str]]) -> tuple[LeakedRoute, ...]:
    out = set()
    for r in policy.routes:
        for vrf_id in (r.vrf_id, r.via_vrf_id):
            vrfs.setdefault(vrf_name(vrf_id.hex), (vrf_id, ""))
        prefix = str(ipaddress.ip_network(r.prefix))
        out.add(LeakedRoute(vrf_name(r.vrf_id.hex), prefix, vrf_name(r.via_vrf_id.hex), r.nexthop))
    return tuple(sorted(out, key=lambda x: (x.vrf, ":" in x.prefix, x.prefix, x.via)))


def _svis(policy: DevicePolicy, vrfs: dict[str, tuple[object, str]]) -> tuple[Svi, ...]:
    """One SVI per VLAN with gateways, in the VRF of the subnets it routes."""
    by_vlan: dict[int, list[Gateway]] = defaultdict(list)
    for g in policy.gateways:
        by_vlan[g.vlan].append(g)
    out = []
    for vlan, gateways in sorted(by_vlan.items()):
        names = {vrf_name(g.vrf_id.hex) for g in gateways}
        if len(names) != 1:
            raise InvalidInput(f"VLAN {vlan} would route in VRFs {sorted(names)}", field="vrf")
        name = names.pop()
        if name not in vrfs:  # a gateway for a VLAN with no local endpoint yet
            vrfs[name] = (gateways[0].vrf_id, "")
        ordered_ = sorted(gateways, key=lambda g: (":" in g.address, g.interface))
        out.append(Svi(vlan, name, tuple(g.interface for g in ordered_)))
    return tuple(out)


def _classes(b: _Builder, vlan: int, family: int, ports: list[PortPolicy]) -> list[_Class]:
    keyed: dict[tuple[object, ...], list[PortPolicy]] = defaultdict(list)
    for p in sorted(ports, key=lambda p: p.endpoint.port_id):
        key = (tuple(sorted(_rule_keys(p.ingress))), tuple(sorted(_rule_keys(p.egress))))
        keyed[key].append(p)
    out = []
    for members in sorted(keyed.values(), key=lambda m: m[0].endpoint.port_id):
        ips = sorted(
            {ip for p in members for ip in addresses(p.endpoint, family)}, key=ipaddress.ip_address
        )
        if ips:
            name = f"fuyun-v{vlan}-c{len(out) + 1}-v{family}"
            b.group(name, family, [f"{ip}/{32 if family == 4 else 128}" for ip in ips])
            out.append(_Class(name, members, ips))
    return out


def _rule_keys(rules: tuple[Rule, ...]) -> list[tuple[str, ...]]:
    return [(r.action.value, repr(r.match)) for r in rules]


def _vlan_acl(b: _Builder, vlan: int, family: int, ports: list[PortPolicy]) -> Acl:
    classes = _classes(b, vlan, family, ports)
    if not classes:  # still filtered: this family has no business on the VLAN
        return Acl(
            acl_name(vlan, family),
            vlan,
            family,
            (
                (f"no IPv{family} endpoint here", ()),
                ("default deny", (Entry("deny", "ip", ANY, ANY),)),
            ),
        )
    local_ips = sorted({ip for c in classes for ip in c.addresses}, key=ipaddress.ip_address)
    local = b.group(f"fuyun-v{vlan}-local-v{family}", family, prefixes(local_ips, family))
    replies: list[Entry] = []  # tcp established and echo replies, see _entries
    denies: list[Entry] = []
    pairs: list[Entry] = []
    own: list[Entry] = []
    for c in classes:
        for p_rules, ingress in ((c.ports[0].ingress, True), (c.ports[0].egress, False)):
            d, allows = ordered(p_rules)
            for rule in d:
                for atom in _atoms(rule, family):
                    remote = _remote(b, atom)
                    if remote is not None:
                        denies += _entries(
                            "deny",
                            family,
                            atom.protocol,
                            atom.ports,
                            remote if ingress else c.group,
                            c.group if ingress else remote,
                            None,
                        )
            for rule in allows:
                for atom in _atoms(rule, family):
                    remote = _remote(b, atom)
                    if remote is not None:
                        own += _entries(
                            "permit",
                            family,
                            atom.protocol,
                            atom.ports,
                            remote if ingress else c.group,
                            c.group if ingress else remote,
                            replies,
                        )
    for s in classes:
        for d in classes:
            pairs += _pair(b, s, d, family, replies)
    sections = (
        (
            "infrastructure: DHCP, ND, ICMP errors",
            tuple(_infra(local, family, _servers(ports, family))),
        ),
        ("replies of allowed flows: tcp established, echo reply", tuple(replies)),
        ("global denies", tuple(denies)),
        ("intra-VLAN: source egress AND destination ingress", tuple(pairs)),
        ("intra-VLAN: nothing else", (Entry("deny", "ip", local, local),)),
        ("ingress and egress of local endpoints (udp replies inline)", tuple(own)),
        ("default deny", (Entry("deny", "ip", ANY, ANY),)),
    )
    seen: set[Entry] = set()
    unique = []
    for remark, entries in sections:  # an entry twice is dead weight in TCAM: keep the first
        kept = []
        for e in entries:
            if e not in seen:
                seen.add(e)
                kept.append(e)
        unique.append((remark, tuple(kept)))
    return Acl(acl_name(vlan, family), vlan, family, tuple(unique))


def _atoms(rule: Rule, family: int) -> tuple[Atom, ...]:
    return tuple(a for a in atoms(rule.match) if a.family == family)


def _remote(b: _Builder, atom: Atom) -> Addr | None:
    """The remote side as an ACL address; None when it can match nothing (empty set)."""
    if atom.remote_set is not None:
        s = b.sets[atom.remote_set]
        return Addr("group", s.name) if set_prefixes(s) else None
    if atom.remote_cidr is not None:
        return _addr(atom.remote_cidr)
    return ANY


def _addr(prefix: str) -> Addr:
    net = ipaddress.ip_network(prefix, strict=False)
    if net.version == 4 and net.prefixlen == 32:
        return Addr("host", str(net.network_address))
    return Addr("prefix", str(net))


def _narrow(b: _Builder, cls: _Class, atom: Atom) -> list[Addr]:
    """The class's addresses that the rule's remote side admits, as few addresses as fit."""
    if atom.remote_any:
        return [cls.group]
    if atom.remote_set is not None:
        nets = [ipaddress.ip_network(a, strict=False) for a in b.sets[atom.remote_set].addresses]
    else:
        nets = [ipaddress.ip_network(atom.remote_cidr or "", strict=False)]
    inside = [ip for ip in cls.addresses if any(ipaddress.ip_address(ip) in n for n in nets)]
    if inside == cls.addresses:
        return [cls.group]
    bits = 32 if atom.family == 4 else 128
    return [_addr(f"{ip}/{bits}") for ip in inside]


def _pair(b: _Builder, s: _Class, d: _Class, family: int, replies: list[Entry]) -> list[Entry]:
    out: list[Entry] = []
    for r_rule in ordered(s.ports[0].egress)[1]:
        for r in _atoms(r_rule, family):
            for q_rule in ordered(d.ports[0].ingress)[1]:
                for q in _atoms(q_rule, family):
                    both = intersect(r, q)
                    if both is None:
                        continue
                    protocol, ports = both
                    for src in _narrow(b, s, q):
                        for dst in _narrow(b, d, r):
                            out += _entries("permit", family, protocol, ports, src, dst, replies)
    return out


def _entries(
    action: str,
    family: int,
    protocol: str,
    ports: tuple[int, int] | None,
    src: Addr,
    dst: Addr,
    replies: list[Entry] | None,
) -> list[Entry]:
    """One entry (``any`` is ``ip``); for a permit, the replies conntrack would pass.

    tcp ``established`` and echo replies go to ``replies``, a section ahead of the
    global denies: conntrack passes a reply even where a deny would stop a new flow
    (an allowed inbound flow from a range that egress denies), and such a packet
    cannot open a connection. A udp reply stays right after its permit, behind the
    denies: a udp packet from the service port could be a new flow into a denied range.
    """
    proto = "ip" if protocol == "any" else protocol
    out = [Entry(action, proto, src, dst, dst_ports=ports)]
    if replies is None:
        return out
    if proto in ("tcp", "ip"):
        replies.append(Entry("permit", "tcp", dst, src, src_ports=ports, established=True))
    if proto in ("icmp", "ip"):
        replies.append(Entry("permit", "icmp", dst, src, icmp_type=ECHO_REPLY[family]))
    if proto == "udp" and ports is not None:
        out.append(Entry("permit", "udp", dst, src, src_ports=ports))
    return out


def _servers(ports: list[PortPolicy], family: int) -> list[str]:
    """The DHCP service addresses of the VLAN's ports' networks (their Bindings)."""
    return sorted(
        {ip for p in ports for ip in p.endpoint.binding.servers(family)}, key=ipaddress.ip_address
    )


def _host_addr(ip: str) -> Addr:
    return _addr(f"{ip}/{32 if ':' not in ip else 128}")


def _infra(local: Addr, family: int, servers: list[str]) -> list[Entry]:
    """No DHCP server on a local port; DHCP only with the network's service (none
    without one); ND/MLD; ICMP errors to local ports."""
    client, server = DHCP_CLIENT[family]
    out = [Entry("deny", "udp", local, ANY, src_ports=(server, server))]
    if family == 6:
        out.append(Entry("deny", "icmp", local, ANY, icmp_type=134))
    if servers:
        for to in (DHCP_ALL_SERVERS[family], *servers):
            out.append(
                Entry("permit", "udp", ANY, _host_addr(to), (client, client), (server, server))
            )
        sources = [_host_addr(ip) for ip in servers]
        if family == 6:  # DHCPv6 servers answer from their link-local address
            sources.insert(0, Addr("prefix", "fe80::/10"))
        for source in sources:
            out.append(Entry("permit", "udp", source, ANY, (server, server), (client, client)))
    if family == 6:
        out += [
            Entry("permit", "icmp", ANY, ANY, icmp_type=t) for t in (131, 133, 134, 135, 136, 143)
        ]
    out += [Entry("permit", "icmp", ANY, local, icmp_type=t) for t in ICMP_ERRORS[family]]
    return out
