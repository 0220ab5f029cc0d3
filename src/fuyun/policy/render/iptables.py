"""``vm-iptables``: one ``iptables-restore`` text per VM, enforced inside the guest.

Semantics: the guest's own share of the policy — its ingress rules on ``INPUT``,
its egress rules on ``OUTPUT`` (the peer's half is enforced in the peer's guest).
Default ``DROP`` on ``INPUT``, ``OUTPUT`` and ``FORWARD`` (a guest is an endpoint,
not a router); loopback passes; stateful: ``ESTABLISHED,RELATED`` accepted and
``INVALID`` dropped before any rule, so replies to allowed flows pass. Then the
infrastructure the guest needs (DHCP client and replies, ICMPv6 ND/MLD), then
global denies (``DROP``), then allows (``ACCEPT``). Every rule is qualified with
the port's own address (``-d`` on INPUT, ``-s`` on OUTPUT), so a VM with several
ports gets each port's rules on its own addresses, and nothing is sent from an
address the port does not own. An ``icmp`` rule means ICMPv6 for IPv6 rules.

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

from fuyun.policy.ir import AddressSet, DevicePolicy, Direction, PortPolicy, Rule
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
        "-4 -A INPUT -p udp -m udp --sport 67 --dport 68 -j ACCEPT",
        "-6 -A INPUT -p udp -m udp --sport 547 --dport 546 -j ACCEPT",
        *(
            f"-6 -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT"
            for t in (134, 135, 136)
        ),
    ),
    "OUTPUT": (
        "-4 -A OUTPUT -p udp -m udp --sport 68 --dport 67 -j ACCEPT",
        "-6 -A OUTPUT -p udp -m udp --sport 546 --dport 547 -j ACCEPT",
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
            *_INFRA[chain],
        ]
        direction = Direction.INGRESS if chain == "INPUT" else Direction.EGRESS
        for verdict in ("DROP", "ACCEPT"):
            for port in ports:
                out += _rules(port, direction, verdict, sets)
    out.append("COMMIT")
    return "\n".join(out) + "\n"


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
