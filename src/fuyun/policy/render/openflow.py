"""``vswitch`` on Open vSwitch hosts: an ``ovs-ofctl add-flows`` flow table.

Semantics are those of :mod:`fuyun.policy.compile` (and the nftables renderer):
default deny both ways, stateful through conntrack, a new flow from port A to
port B passes when A's egress *and* B's ingress allow it, global denies beat every
allow, and traffic of no fuyun port is switched untouched (``NORMAL``). The same
infrastructure rules apply as in :mod:`.nftables` (DHCP client, ICMPv6 ND/MLD,
no DHCP server or router adverts from VMs, source anti-spoofing, tenant rules for
unicast only); in addition ARP from a port must carry the port's own MAC and
IPv4 address, since OVS sees ARP and nftables does not.

Ports are identified by MAC: table 0 loads a port number into ``reg5`` from
``dl_src``, table 1 into ``reg6`` from ``dl_dst`` (0 = not a fuyun port). Port
numbers are 1…n in the order of interface names, so a table is a pure function of
the policy; ``reg7`` holds the port's VLAN, used as the conntrack zone, so
tenants that reuse addresses never share connection state. Binding MAC to
``in_port`` is the driver's job (it knows OpenFlow port numbers; the IR does not).

Table layout::

    0   classify source: dl_src=MAC -> reg5=port, reg7=VLAN
    1   classify destination: dl_dst=MAC -> reg6=port, reg7=VLAN
    2   dispatch: not ours -> 30; ND/MLD -> 9; IP/IPv6 -> ct(zone=reg7, table=5);
        ARP -> 9; else drop
    5   conntrack state: +inv drop; +est/+rel -> 30; +new -> 9
    9   egress guard: non-local source -> 19; ARP and IP anti-spoofing and DHCP to
        the network's service (the port's Binding), ND, broadcast/multicast drop;
        then -> 10
    10  egress rules: denies (priority 200/201) drop, allows (100/101) -> 19, else drop
    19  ingress guard: non-local destination -> 30; ARP, DHCP replies from the
        port's service, ND -> 30; else -> 20
    20  ingress rules: denies drop, allows -> 30, else drop
    30  output: +new IP/IPv6 -> ct(commit, zone=reg7), NORMAL; everything else NORMAL

Conjunctive matches keep the table additive. Each distinct (action, rule atom) of
a direction becomes one ``conj_id``; its clauses are (1) the ports that carry the
rule (``reg5``/``reg6``), (2) the remote addresses (set members or the CIDR,
``nw_dst``/``ipv6_dst`` on egress, ``nw_src``/``ipv6_src`` on ingress), (3) the
destination port range as value/mask ``tcp_dst``/``udp_dst`` flows. OVS requires one flow per
(table, priority, match), so a port's or an address's clause flow carries one
``conjunction(id,k/n)`` action per rule using it: the *flow* count grows with
ports + set members + rules + ranges, never with their product. A rule with a
single dimension (any remote, no ports) is a plain flow per port. An empty
address set matches nothing and emits nothing. Denies sit at higher priorities
than allows, so an allow can never outrank a deny; when a conjunction does not
complete, OVS keeps looking at lower priorities.

Format: one flow per line in ``ovs-ofctl add-flows`` syntax, ``cookie=0x6675796e``
("fuyn") on every flow, so the driver can ``ovs-ofctl -O OpenFlow13 replace-flows``
(plain OpenFlow 1.0 cannot carry ``conj_id`` or ``ct_state``) or ``del-flows
cookie=0x6675796e/-1`` without touching anyone else's; ``#`` lines are comments.
Transport ports use the explicit ``tcp_dst``/``udp_dst``/``icmpv6_type`` fields,
which every OVS parser (``ofproto/trace`` included) accepts. Sorted by table,
descending priority, then match (numbers compared as numbers).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import (
    DHCP_ALL_SERVERS,
    DHCP_CLIENT,
    Action,
    Binding,
    DevicePolicy,
    Direction,
    PortPolicy,
)
from fuyun.policy.render._common import (
    Atom,
    addresses,
    atoms,
    check,
    normal_mac,
    port_device,
    port_ranges_to_masks,
    prefixes,
    set_prefixes,
)

COOKIE = "0x6675796e"
CLASSIFY_SRC, CLASSIFY_DST, DISPATCH, STATE = 0, 1, 2, 5
EGRESS_GUARD, EGRESS, INGRESS_GUARD, INGRESS, OUTPUT = 9, 10, 19, 20, 30
ZONE = "NXM_NX_REG7[0..15]"

_PRIORITY = {
    (Action.DENY, True): 200,
    (Action.DENY, False): 201,
    (Action.ALLOW, True): 100,
    (Action.ALLOW, False): 101,
}


@dataclass
class _Table:
    """Flows keyed by (table, priority, match): OVS keeps one flow per key."""

    flows: dict[tuple[int, int, str], list[str]] = field(default_factory=dict)

    def add(self, table: int, priority: int, match: str, *actions: str) -> None:
        key = (table, priority, match)
        old = self.flows.get(key)
        if old is None:
            self.flows[key] = list(actions)
        elif all(a.startswith("conjunction(") for a in (*old, *actions)):
            old.extend(a for a in actions if a not in old)
        elif old != list(actions):
            raise InvalidInput(
                f"conflicting flows for table={table} priority={priority} {match}", field="rules"
            )

    def lines(self) -> list[str]:
        out = []
        for (table, priority, match), actions in sorted(
            self.flows.items(), key=lambda kv: (kv[0][0], -kv[0][1], _natural(kv[0][2]))
        ):
            fields = [f"cookie={COOKIE}", f"table={table}", f"priority={priority}"]
            if match:
                fields.append(match)
            out.append(",".join(fields) + f",actions={','.join(actions)}")
        return out


def render(policy: DevicePolicy) -> str:
    """The bridge's fuyun flows, for ``ovs-ofctl add-flows`` / ``replace-flows``."""
    check(policy)
    ports = sorted(policy.ports, key=lambda p: port_device(p.endpoint))
    t = _Table()
    _fixed(t)
    for number, port in enumerate(ports, start=1):
        _port(t, number, port)
    conj = _Conjunctions(t, policy)
    for direction in (Direction.EGRESS, Direction.INGRESS):
        conj.direction(direction, list(enumerate(ports, start=1)))
    head = [
        f"# fuyun vswitch policy for {policy.device}: OpenFlow (Open vSwitch), "
        f"{len(ports)} ports, {len(t.flows)} flows.",
        "# Generated from the enforcement IR; load with `ovs-ofctl -O OpenFlow13 "
        "replace-flows`. Do not edit.",
    ]
    return "\n".join(head + t.lines()) + "\n"


def _fixed(t: _Table) -> None:
    """Flows that do not depend on the policy: dispatch, conntrack, guards, output."""
    t.add(CLASSIFY_SRC, 0, "", f"resubmit(,{CLASSIFY_DST})")
    t.add(CLASSIFY_DST, 0, "", f"resubmit(,{DISPATCH})")
    t.add(DISPATCH, 100, "reg5=0,reg6=0", f"resubmit(,{OUTPUT})")
    # Neighbour discovery and MLD bypass conntrack: the userspace datapath's tracker
    # calls them invalid, which would drop every NA a VM sends (no IPv6 at all). The
    # guards still decide who may send which of them.
    for icmp_type in (131, 133, 134, 135, 136, 143):
        t.add(DISPATCH, 95, f"icmp6,icmpv6_type={icmp_type}", f"resubmit(,{EGRESS_GUARD})")
    for proto in ("ip", "ipv6"):
        t.add(DISPATCH, 90, proto, f"ct(table={STATE},zone={ZONE})")
        t.add(OUTPUT, 100, f"ct_state=+new+trk,{proto}", f"ct(commit,zone={ZONE})", "NORMAL")
    t.add(DISPATCH, 80, "arp", f"resubmit(,{EGRESS_GUARD})")
    t.add(DISPATCH, 0, "", "drop")
    t.add(STATE, 200, "ct_state=+inv+trk", "drop")
    t.add(STATE, 100, "ct_state=+est+trk", f"resubmit(,{OUTPUT})")
    t.add(STATE, 100, "ct_state=+rel+trk", f"resubmit(,{OUTPUT})")
    t.add(STATE, 50, "ct_state=+new+trk", f"resubmit(,{EGRESS_GUARD})")
    t.add(STATE, 0, "", "drop")
    # Egress guard: who may say what before tenant rules are consulted.
    t.add(EGRESS_GUARD, 400, "reg5=0", f"resubmit(,{INGRESS_GUARD})")
    t.add(EGRESS_GUARD, 350, "udp,udp_src=67", "drop")
    t.add(EGRESS_GUARD, 350, "udp6,udp_src=547", "drop")
    t.add(EGRESS_GUARD, 350, "icmp6,icmpv6_type=134", "drop")
    for icmp_type in (131, 133, 135, 136, 143):  # MLD report, RS, NS, NA, MLDv2 report
        t.add(EGRESS_GUARD, 300, f"icmp6,icmpv6_type={icmp_type}", f"resubmit(,{INGRESS_GUARD})")
    t.add(EGRESS_GUARD, 290, "arp", "drop")
    t.add(EGRESS_GUARD, 250, "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00", "drop")
    t.add(EGRESS_GUARD, 0, "", "drop")
    t.add(EGRESS, 0, "", "drop")
    t.add(INGRESS_GUARD, 400, "reg6=0", f"resubmit(,{OUTPUT})")
    t.add(INGRESS_GUARD, 350, "arp", f"resubmit(,{OUTPUT})")
    for icmp_type in (134, 135, 136):  # RA, NS, NA
        t.add(INGRESS_GUARD, 300, f"icmp6,icmpv6_type={icmp_type}", f"resubmit(,{OUTPUT})")
    t.add(INGRESS_GUARD, 0, "", f"resubmit(,{INGRESS})")
    t.add(INGRESS, 0, "", "drop")
    t.add(OUTPUT, 0, "", "NORMAL")


def _port(t: _Table, number: int, port: PortPolicy) -> None:
    """Per-port classification and anti-spoofing: a constant number of flows per address."""
    e = port.endpoint
    mac = normal_mac(e.mac)
    t.add(
        CLASSIFY_SRC,
        100,
        f"dl_src={mac}",
        f"load:{number}->NXM_NX_REG5[]",
        f"load:{e.vlan}->{ZONE}",
        f"resubmit(,{CLASSIFY_DST})",
    )
    t.add(
        CLASSIFY_DST,
        100,
        f"dl_dst={mac}",
        f"load:{number}->NXM_NX_REG6[]",
        f"load:{e.vlan}->{ZONE}",
        f"resubmit(,{DISPATCH})",
    )
    for ip in addresses(e, 4):
        t.add(
            EGRESS_GUARD,
            300,
            f"arp,reg5={number},arp_spa={ip},arp_sha={mac}",
            f"resubmit(,{OUTPUT})",
        )
        t.add(EGRESS_GUARD, 200, f"ip,reg5={number},nw_src={ip}", f"resubmit(,{EGRESS})")
    for ip in addresses(e, 6):
        t.add(EGRESS_GUARD, 200, f"ipv6,reg5={number},ipv6_src={ip}", f"resubmit(,{EGRESS})")
    _dhcp(t, number, e.binding)


def _dhcp(t: _Table, number: int, binding: Binding) -> None:
    """DHCP of the port's binding: requests to its service (or all servers), replies from it."""
    for family, base, dst, src in (
        (4, "udp", "nw_dst", "nw_src"),
        (6, "udp6", "ipv6_dst", "ipv6_src"),
    ):
        servers = binding.servers(family)
        if not servers:
            continue  # no DHCP service on the network: no DHCP
        client, server = DHCP_CLIENT[family]
        ports = f"udp_src={client},udp_dst={server}"
        for to in (DHCP_ALL_SERVERS[family], *servers):
            t.add(
                EGRESS_GUARD,
                300,
                f"{base},reg5={number},{dst}={to},{ports}",
                f"resubmit(,{INGRESS_GUARD})",
            )
        replies = f"udp_src={server},udp_dst={client}"
        sources = (["fe80::/10"] if family == 6 else []) + servers
        for source in sources:
            t.add(
                INGRESS_GUARD,
                300,
                f"{base},reg6={number},{src}={source},{replies}",
                f"resubmit(,{OUTPUT})",
            )


def _base(atom: Atom) -> str:
    """The OVS shorthand that carries family and protocol prerequisites."""
    v6 = atom.family == 6
    if atom.protocol == "icmp":
        return "icmp6" if v6 else "icmp"
    if atom.protocol in ("tcp", "udp"):
        return atom.protocol + ("6" if v6 else "")
    return "ipv6" if v6 else "ip"


class _Conjunctions:
    """Tenant and global rules of one direction as conjunctive (or plain) flows."""

    def __init__(self, table: _Table, policy: DevicePolicy) -> None:
        self.t = table
        self.sets = policy.set_by_name()
        self.next_id = 1

    def direction(self, direction: Direction, ports: list[tuple[int, PortPolicy]]) -> None:
        egress = direction is Direction.EGRESS
        table, reg = (EGRESS, "reg5") if egress else (INGRESS, "reg6")
        allow = f"resubmit(,{INGRESS_GUARD})" if egress else f"resubmit(,{OUTPUT})"
        users: dict[tuple[Action, Atom], list[int]] = defaultdict(list)
        for number, port in ports:
            for rule in port.egress if egress else port.ingress:
                for atom in atoms(rule.match):
                    numbers = users[(rule.action, atom)]
                    if not numbers or numbers[-1] != number:  # ports come in order
                        numbers.append(number)
        for (action, atom), numbers in sorted(
            users.items(), key=lambda kv: (kv[0][0].value, kv[0][1].key())
        ):
            verdict = "drop" if action is Action.DENY else allow
            base = _base(atom)
            dims = [[f"{base},{reg}={n}" for n in numbers]]
            if not atom.remote_any:
                remote = self._remote(atom, egress)
                if not remote:
                    continue  # an empty set matches nothing
                dims.append([f"{base},{r}" for r in remote])
            if atom.ports is not None:
                dims.append(
                    [
                        f"{base},{atom.protocol}_dst={_masked(v, m)}"
                        for v, m in port_ranges_to_masks(*atom.ports)
                    ]
                )
            if len(dims) == 1:
                for match in dims[0]:
                    self.t.add(table, _PRIORITY[(action, False)], match, verdict)
                continue
            conj_id, priority = self.next_id, _PRIORITY[(action, True)]
            self.next_id += 1
            for k, dim in enumerate(dims, start=1):
                for match in dim:
                    self.t.add(table, priority, match, f"conjunction({conj_id},{k}/{len(dims)})")
            self.t.add(
                table,
                priority,
                f"conj_id={conj_id},{'ipv6' if atom.family == 6 else 'ip'}",
                verdict,
            )

    def _remote(self, atom: Atom, egress: bool) -> list[str]:
        if atom.remote_set is not None:
            items = list(set_prefixes(self.sets[atom.remote_set]))
        else:
            items = prefixes([atom.remote_cidr or ""], atom.family)
        side = "dst" if egress else "src"
        name = f"ipv6_{side}" if atom.family == 6 else f"nw_{side}"
        return [f"{name}={_host(p)}" for p in items]


def _natural(text: str) -> tuple[tuple[int, str], ...]:
    """Sort key that orders ``conj_id=9`` before ``conj_id=10`` and ports numerically."""
    return tuple(
        (int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", text)
    )


def _host(prefix: str) -> str:
    return prefix.rsplit("/", 1)[0] if prefix.endswith(("/32", "/128")) else prefix


def _masked(value: int, mask: int) -> str:
    return str(value) if mask == 0xFFFF else f"{value:#x}/{mask:#x}"
