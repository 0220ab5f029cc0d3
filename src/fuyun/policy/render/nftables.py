"""``vswitch`` on Linux-bridge hosts: one nftables table, ``table inet fuyun``.

Why ``inet`` and not ``bridge``
    Bridged VM traffic can be filtered in two places: the ``bridge`` family (sees
    the bridge port as ``iifname``/``oifname``) or, with ``br_netfilter``, the
    ``inet`` family's hooks. Stateful filtering in the bridge family needs
    ``nf_conntrack_bridge`` (``CONFIG_NF_CONNTRACK_BRIDGE``), which many kernels —
    our CI kernel among them — lack: ``ct state`` is refused there. With
    ``br_netfilter`` (``net.bridge.bridge-nf-call-iptables=1`` and
    ``…-ip6tables=1``), bridged IPv4/IPv6 passes the ``inet`` hooks *with*
    conntrack, on every kernel we target. The price: there ``iifname`` and
    ``oifname`` are the bridge, not the VM's tap, so ports are keyed by MAC
    (``ether saddr`` for egress, ``ether daddr`` for ingress; the frame's MAC
    header is intact for bridged traffic). Binding a MAC to its tap is the bridge's
    job (the Linux driver pins it: locked bridge port + static FDB entry, or
    ebtables); ARP is not IP and never reaches these hooks. ``reject`` is not
    used anywhere (the bridge family lacks it); denied packets are dropped.

Semantics (as :mod:`fuyun.policy.compile` defines them)
    - Default deny both directions; stateful: ``ct state established,related
      accept`` first, ``ct state invalid drop`` in every port chain.
    - A new flow from port A to port B passes when A's egress chain *returns*
      (allows) and B's ingress chain *accepts*; traffic to or from the uplink is
      judged by the one local port's chain. Traffic of no fuyun port is untouched
      (base chains have ``policy accept``).
    - Each port chain: fixed infrastructure rules, then global denies
      (``drop``), then allows, then ``drop``.
    - The port's :class:`~fuyun.policy.ir.Binding` (in the IR): egress may send
      DHCP client requests (v4 68→67, v6 546→547) only to its network's DHCP
      service or the all-servers address, and ingress accepts DHCP replies only
      from that service (no service, no DHCP); egress sources must be the port's
      own addresses (anti-spoofing). Infrastructure every VM needs: ICMPv6
      router/neighbour solicitations and adverts and MLD reports; egress may
      *not* answer as a DHCP server (udp source 67/547) nor send router adverts;
      ingress accepts ICMPv6 ND/RA. Tenant rules apply to unicast only:
      broadcast/multicast beyond the above is dropped, since the receivers'
      ingress chains could not be applied to it.
    - Conntrack zones: ``ct zone`` is set in ``prerouting`` (priority raw, before
      conntrack) to the port's VLAN, keyed by MAC, so tenants that reuse
      addresses in different VRFs never share connection state.

Format
    ``table inet fuyun {}`` + ``delete table inet fuyun`` + the full table: one
    ``nft -f`` transaction that replaces fuyun's table atomically (creating it
    first makes the delete safe on a fresh host) and leaves every other table —
    and the rest of the ruleset — alone. Named interval sets hold address sets
    (collapsed to non-overlapping prefixes; an empty set is still declared);
    verdict maps ``egress_ports``/``ingress_ports`` map a MAC to
    ``jump port_<dev>_egress|ingress``, so classifying a packet costs one hash
    lookup however many ports the host has (the kube-proxy lesson: set lookups,
    not linear chains). Every tenant or global rule carries ``comment "<origin>"``
    to blame. Output is sorted: sets by name, ports by interface, rules by match.
"""

from __future__ import annotations

from fuyun.policy.ir import (
    DHCP_ALL_SERVERS,
    DHCP_CLIENT,
    AddressSet,
    Binding,
    DevicePolicy,
    Direction,
    PortPolicy,
    Rule,
)
from fuyun.policy.render._common import (
    Atom,
    addresses,
    atoms,
    check,
    normal_mac,
    ordered,
    port_device,
    prefixes,
    set_prefixes,
)

TABLE = "inet fuyun"
_INDENT = "\t"

_EGRESS_INFRA = (
    'udp sport { 67, 547 } drop comment "no DHCP server on a VM port"',
    'icmpv6 type nd-router-advert drop comment "no router adverts from a VM port"',
)
_EGRESS_ND = (
    "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, "
    'mld-listener-report, mld2-listener-report } return comment "IPv6 ND and MLD"',
    'meta pkttype { broadcast, multicast } drop comment "tenant rules are unicast"',
)
_INGRESS_ND = (
    "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } "
    'accept comment "IPv6 ND"',
)


def render(policy: DevicePolicy) -> str:
    """The host's whole fuyun table as one atomic ``nft -f`` script."""
    check(policy)
    ports = sorted(policy.ports, key=lambda p: port_device(p.endpoint))
    out = [
        f"# fuyun vswitch policy for {policy.device}: nftables (linux-bridge + br_netfilter).",
        "# Generated from the enforcement IR; load with `nft -f` (atomic). Do not edit.",
        f"table {TABLE} {{}}",
        f"delete table {TABLE}",
        f"table {TABLE} {{",
    ]
    for s in sorted(policy.sets, key=lambda s: s.name):
        out += _set(s)
    out += _map(
        "port_zone",
        "typeof ether saddr : ct zone",
        [f"{normal_mac(p.endpoint.mac)} : {p.endpoint.vlan}" for p in ports],
    )
    for direction in (Direction.EGRESS, Direction.INGRESS):
        out += _map(
            f"{direction.value}_ports",
            "type ether_addr : verdict",
            [f"{normal_mac(p.endpoint.mac)} : jump {_chain(p, direction)}" for p in ports],
        )
    out += _chain_block(
        "prerouting",
        [
            "type filter hook prerouting priority raw; policy accept;",
            "ct zone set ether daddr map @port_zone",
            "ct zone set ether saddr map @port_zone",
        ],
    )
    out += _chain_block(
        "forward",
        [
            "type filter hook forward priority filter; policy accept;",
            "ct state established,related accept",
            "ether saddr vmap @egress_ports",
            "ether daddr vmap @ingress_ports",
        ],
    )
    for p in ports:
        out += _chain_block(_chain(p, Direction.EGRESS), _egress(p))
        out += _chain_block(_chain(p, Direction.INGRESS), _ingress(p))
    out.append("}")
    return "\n".join(out) + "\n"


def _chain(port: PortPolicy, direction: Direction) -> str:
    return f"port_{port_device(port.endpoint)}_{direction.value}"


def _set(s: AddressSet) -> list[str]:
    body = [f"type {'ipv4_addr' if s.family == 4 else 'ipv6_addr'}", "flags interval"]
    body += _elements([_host(e) for e in set_prefixes(s)])
    return _block(f"set {s.name}", body)


def _map(name: str, kind: str, elements: list[str]) -> list[str]:
    return _block(f"map {name}", [kind, *_elements(sorted(elements))])


def _elements(items: list[str]) -> list[str]:
    """One element per line (readable diffs); no ``elements`` at all when empty."""
    if not items:
        return []
    return ["elements = {", *(f"{_INDENT}{i}," for i in items[:-1]), f"{_INDENT}{items[-1]}", "}"]


def _chain_block(name: str, body: list[str]) -> list[str]:
    return _block(f"chain {name}", body)


def _block(head: str, body: list[str]) -> list[str]:
    return [f"{_INDENT}{head} {{", *(f"{_INDENT * 2}{line}" for line in body), f"{_INDENT}}}"]


def _host(prefix: str) -> str:
    """A /32 or /128 is written as the bare address: the form ``nft list`` prints."""
    return prefix.rsplit("/", 1)[0] if prefix.endswith(("/32", "/128")) else prefix


def _dhcp_client(binding: Binding) -> list[str]:
    """DHCP requests to the network's service (or its all-servers address), nothing else."""
    out = []
    for family, keyword in ((4, "ip"), (6, "ip6")):
        servers = binding.servers(family)
        if servers:
            client, server = DHCP_CLIENT[family]
            to = ", ".join([DHCP_ALL_SERVERS[family], *servers])
            out.append(
                f"{keyword} daddr {{ {to} }} udp sport {client} udp dport {server} return "
                f'comment "DHCPv{family} client"'
            )
    return out


def _dhcp_replies(binding: Binding) -> list[str]:
    out = []
    for family, keyword in ((4, "ip"), (6, "ip6")):
        servers = binding.servers(family)
        if servers:
            client, server = DHCP_CLIENT[family]
            if family == 6:  # DHCPv6 servers answer from their link-local address
                servers = ["fe80::/10", *servers]
            out.append(
                f"{keyword} saddr {{ {', '.join(servers)} }} udp sport {server} "
                f'udp dport {client} accept comment "DHCPv{family} reply"'
            )
    return out


def _egress(port: PortPolicy) -> list[str]:
    e = port.endpoint
    body = ["ct state invalid drop", *_EGRESS_INFRA, *_dhcp_client(e.binding), *_EGRESS_ND]
    for family, keyword in ((4, "ip"), (6, "ip6")):
        own = addresses(e, family)
        if own:
            body.append(f'{keyword} saddr != {{ {", ".join(own)} }} drop comment "anti-spoofing"')
        else:
            body.append(f'meta nfproto ipv{family} drop comment "no IPv{family} address"')
    body += _rules(port.egress, Direction.EGRESS, allow="return")
    body.append("drop")
    return body


def _ingress(port: PortPolicy) -> list[str]:
    body = ["ct state invalid drop", *_dhcp_replies(port.endpoint.binding), *_INGRESS_ND]
    body += _rules(port.ingress, Direction.INGRESS, allow="accept")
    body.append("drop")
    return body


def _rules(rules: tuple[Rule, ...], direction: Direction, allow: str) -> list[str]:
    """Denies then allows; an allow in egress *returns* so B's ingress still decides."""
    denies, allows = ordered(rules)
    out = []
    for verdict, group in (("drop", denies), (allow, allows)):
        for rule in group:
            for atom in atoms(rule.match):
                out.append(f'{_match(atom, direction)} {verdict} comment "{rule.origin}"')
    return out


def _match(atom: Atom, direction: Direction) -> str:
    keyword = "ip" if atom.family == 4 else "ip6"
    field = "saddr" if direction is Direction.INGRESS else "daddr"
    if atom.remote_set is not None:
        parts = [f"{keyword} {field} @{atom.remote_set}"]
    elif atom.remote_cidr is not None:
        parts = [f"{keyword} {field} {prefixes([atom.remote_cidr], atom.family)[0]}"]
    else:
        parts = [f"meta nfproto ipv{atom.family}"]
    if atom.protocol in ("tcp", "udp"):
        if atom.ports is None:
            parts.append(f"meta l4proto {atom.protocol}")
        else:
            lo, hi = atom.ports
            parts.append(f"{atom.protocol} dport {lo if lo == hi else f'{lo}-{hi}'}")
    elif atom.protocol == "icmp":
        parts.append("meta l4proto icmp" if atom.family == 4 else "meta l4proto ipv6-icmp")
    return " ".join(parts)
