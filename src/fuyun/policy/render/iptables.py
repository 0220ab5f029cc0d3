"""``vm-iptables``: one ``iptables-restore`` text per VM, enforced inside the guest.

Semantics: the guest's own share of the policy — its ingress rules on ``INPUT``,
its egress rules on ``OUTPUT`` (the peer's half is enforced in the peer's guest).
Default ``DROP`` on ``INPUT``, ``OUTPUT`` and ``FORWARD`` (a guest is an endpoint,
not a router); loopback passes; stateful: ``ESTABLISHED,RELATED`` accepted and
``INVALID`` dropped before any rule, so replies to allowed flows pass. Then the
ports' :class:`~fuyun.policy.ir.Binding` DHCP (requests to the network's DHCP
service or the all-servers address, replies only from that service; none when
the network has no service), the ICMPv6 ND/MLD the guest needs, then
global denies (``DROP``), then allows (``ACCEPT``). Every rule is qualified with
the port's own address (``-d`` on INPUT, ``-s`` on OUTPUT), so a VM with several
ports gets each port's rules on its own addresses, and nothing is sent from an
address the port does not own — the Binding's anti-spoofing as far as a guest can
enforce it (its MAC cannot be checked on ``OUTPUT``; the vswitch or ToR does that).
An ``icmp`` rule means ICMPv6 for IPv6 rules.

This is the weakest enforcement point — whoever is root in the guest can flush
it — and it exists for fabrics that have nothing better.

Format: a single text for *both* ``iptables-restore`` and ``ip6tables-restore``:
IPv4 rules start with ``-4`` and IPv6 rules with ``-6``, which each tool honours
by silently skipping the other family's lines (iptables(8), ``-4``/``-6``). The
``filter`` table only, ended by ``COMMIT``; restoring it replaces the table
atomically. No ipset: remote sets are expanded inline (one line per collapsed
prefix), because a guest holds only its own few rules and must not depend on
the ipset tool. Rules carry ``-m comment --comment "<origin>"`` to blame.
"""

from __future__ import annotations

from fuyun.policy.ir import (
    DHCP_ALL_SERVERS,
    DHCP_CLIENT,
    AddressSet,
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
    ordered,
    prefixes,
    set_prefixes,
)

_INFRA = {
    "INPUT": (
        *(
            f"-6 -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT"
            for t in (134, 135, 136)
        ),
    ),
    "OUTPUT": (
        *(
            f"-6 -A OUTPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT"
            for t in (131, 133, 135, 136, 143)
        ),
    ),
}


def render(policy: DevicePolicy) -> str:
    """The guest's filter table, valid input to iptables-restore and ip6tables-restore."""
    check(policy)
    ports = sorted(policy.ports, key=lambda p: p.endpoint.port_id)
    sets = policy.set_by_name()
    out = [
        f"# fuyun vm-iptables policy for {policy.device}: feed to iptables-restore "
        "and ip6tables-restore.",
        "# Generated from the enforcement IR; -4/-6 lines are per family. Do not edit.",
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT DROP [0:0]",
    ]
    for chain, lo in (("INPUT", "-i lo"), ("OUTPUT", "-o lo")):
        out += [
            f"-A {chain} {lo} -j ACCEPT",
            f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A {chain} -m conntrack --ctstate INVALID -j DROP",
            *_dhcp(chain, ports),
            *_INFRA[chain],
        ]
        direction = Direction.INGRESS if chain == "INPUT" else Direction.EGRESS
        for verdict in ("DROP", "ACCEPT"):
            for port in ports:
                out += _rules(port, direction, verdict, sets)
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def _dhcp(chain: str, ports: list[PortPolicy]) -> list[str]:
    """The ports' DHCP (their Binding): requests to the service, replies only from it."""
    out: list[str] = []
    for family in (4, 6):
        servers = sorted({ip for p in ports for ip in p.endpoint.binding.servers(family)})
        if not servers:
            continue  # no DHCP service on the network: no DHCP
        client, server = DHCP_CLIENT[family]
        bits = 32 if family == 4 else 128
        if chain == "OUTPUT":
            for to in (DHCP_ALL_SERVERS[family], *servers):
                out.append(
                    f"-{family} -A OUTPUT -d {to}/{bits} -p udp -m udp --sport {client} "
                    f"--dport {server} -j ACCEPT"
                )
        else:
            sources = [f"{ip}/{bits}" for ip in servers]
            if family == 6:  # DHCPv6 servers answer from their link-local address
                sources.insert(0, "fe80::/10")
            for source in sources:
                out.append(
                    f"-{family} -A INPUT -s {source} -p udp -m udp --sport {server} "
                    f"--dport {client} -j ACCEPT"
                )
    return out


def _rules(
    port: PortPolicy, direction: Direction, verdict: str, sets: dict[str, AddressSet]
) -> list[str]:
    denies, allows = ordered(port.ingress if direction is Direction.INGRESS else port.egress)
    rules: list[Rule] = denies if verdict == "DROP" else allows
    out = []
    for rule in rules:
        for atom in atoms(rule.match):
            remotes = _remotes(atom, sets)
            for own in addresses(port.endpoint, atom.family):
                out += _lines(atom, direction, own, remotes, verdict, rule.origin)
    return out


def _remotes(atom: Atom, sets: dict[str, AddressSet]) -> list[str] | None:
    """Remote prefixes to expand inline; None means any (no ``-s``/``-d`` at all)."""
    if atom.remote_cidr is not None:
        return prefixes([atom.remote_cidr], atom.family)
    if atom.remote_set is not None:
        return list(set_prefixes(sets[atom.remote_set]))  # [] matches nothing
    return None


def _lines(
    atom: Atom, direction: Direction, own: str, remotes: list[str] | None, verdict: str, origin: str
) -> list[str]:
    ingress = direction is Direction.INGRESS
    chain = "INPUT" if ingress else "OUTPUT"
    own_flag, remote_flag = ("-d", "-s") if ingress else ("-s", "-d")
    own_prefix = f"{own}/{32 if atom.family == 4 else 128}"
    remote_args = [""] if remotes is None else [f" {remote_flag} {p}" for p in remotes]
    return [
        f"-{atom.family} -A {chain}{r} {own_flag} {own_prefix}{_protocol(atom)} "
        f'-m comment --comment "{origin}" -j {verdict}'
        for r in remote_args
    ]


def _protocol(atom: Atom) -> str:
    if atom.protocol in ("tcp", "udp"):
        if atom.ports is None:
            return f" -p {atom.protocol}"
        lo, hi = atom.ports
        return f" -p {atom.protocol} -m {atom.protocol} --dport {lo if lo == hi else f'{lo}:{hi}'}"
    if atom.protocol == "icmp":
        return " -p icmp" if atom.family == 4 else " -p ipv6-icmp"
    return ""
