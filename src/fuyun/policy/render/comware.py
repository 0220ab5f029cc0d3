"""``tor-acl`` for Comware-style (H3C) switches: VLANs, VPN instances, ACLs, VLAN QoS filters.

Meaning is :mod:`._tor`'s, entry for entry, exactly as :mod:`.nxos` prints it;
only the spelling and the way a list is bound to a VLAN differ.

Format (``#`` separates blocks, every list sorted):

- ``vlan N`` / ``name fuyun-N`` for every VLAN carried;
- ``ip vpn-instance fy-<vrf id prefix>`` for every tenant VRF with endpoints here;
- ``ip route-static vpn-instance fy-A P LEN vpn-instance fy-B NEXTHOP`` (``ipv6
  route-static`` for IPv6) for each route of an approved route leak: the next hop
  is the peer subnet's gateway in the peer instance;
- ``object-group ip address`` / ``object-group ipv6 address`` with
  ``network host address A`` or ``network subnet A MASK`` (IPv6: ``A LEN``) items;
- one ``acl advanced name FUYUN-VLAN<N>-<seq>`` (IPv6: ``acl ipv6 advanced name
  FUYUN6-VLAN<N>-<seq>``) per run of same-action entries, all rules ``permit``,
  ``description`` naming the sections it holds; rules numbered 10, 20, …;
- the VLAN filter as a QoS VLAN policy, because Comware's ``packet-filter`` binds
  to interfaces, not VLANs: a ``traffic classifier`` per run (``if-match acl``),
  shared behaviours ``FUYUN-FORWARD`` (``filter permit``) and ``FUYUN-DROP``
  (``filter deny``), ``qos policy FUYUN-VLAN<N>`` pairing them in run order —
  the first classifier that matches decides, which restores the ACL's
  first-match meaning — applied ``inbound`` and ``outbound`` on the VLAN, so
  traffic routed into the VLAN meets its ingress rules too. Packets no classifier
  matches are forwarded by QoS; every IP family therefore ends with an explicit
  ``FUYUN-DROP`` run matching everything, and non-IP (ARP) passes.
"""

from __future__ import annotations

import ipaddress

from fuyun.policy.ir import DevicePolicy
from fuyun.policy.render._tor import (
    Addr,
    Entry,
    ObjectGroup,
    Run,
    TorConfig,
    build,
    vlan_ranges,
)

_PROTO6 = {"ip": "ipv6", "icmp": "icmpv6"}


def render(policy: DevicePolicy) -> str:
    """The ToR's fuyun configuration as Comware-style CLI text."""
    return render_config(build(policy))


def render_config(config: TorConfig) -> str:
    out = [
        f"# fuyun tor-acl for {config.device} (Comware style)",
        "# Generated from the enforcement IR; apply as a whole. Do not edit.",
        "#",
    ]
    for vlan in config.vlans:
        out += [f"vlan {vlan}", f" name fuyun-{vlan}", "#"]
    for name, _tenant in config.vrfs:
        out += [f"ip vpn-instance {name}", "#"]
    for r in config.routes:  # approved route leaks: the next hop is in the peer instance
        net = ipaddress.ip_network(r.prefix)
        family = "ipv6" if net.version == 6 else "ip"
        out.append(
            f"{family} route-static vpn-instance {r.vrf} {net.network_address} {net.prefixlen}"
            f" vpn-instance {r.via} {r.nexthop}"
        )
    if config.routes:
        out.append("#")
    for svi in config.svis:
        out += [f"interface Vlan-interface{svi.vlan}", f" ip binding vpn-instance {svi.vrf}"]
        for address in svi.addresses:
            if ":" in address:
                out.append(f" ipv6 address {address}")
            else:
                net = ipaddress.ip_interface(address)
                out.append(f" ip address {net.ip} {net.netmask}")
        out.append("#")
    for trunk in config.trunks:
        out += [
            f"interface {trunk.interface}",
            f" description fuyun host {trunk.host}",
            " port link-type trunk",
            " undo port trunk permit vlan all",
        ]
        if trunk.vlans:
            allowed = " ".join(
                str(a) if a == b else f"{a} to {b}" for a, b in vlan_ranges(trunk.vlans)
            )
            out.append(f" port trunk permit vlan {allowed}")
        bindings = config.bindings_on(trunk.interface)
        for b in bindings:
            kind, word = ("ipv6", "ipv6-address") if ":" in b.address else ("ip", "ip-address")
            out.append(
                f" {kind} source binding {word} {b.address} mac-address {_mac(b.mac)} vlan {b.vlan}"
            )
        if any(":" not in b.address for b in bindings):
            out.append(" ip verify source ip-address mac-address")
        if any(":" in b.address for b in bindings):
            out.append(" ipv6 verify source ipv6-address mac-address")
        out.append("#")
    for group in config.groups:
        out += [*_group(group), "#"]
    policies: dict[int, list[tuple[str, str]]] = {}
    classifiers: list[str] = []
    for acl in config.acls:
        pairs = policies.setdefault(acl.vlan, [])
        for run in acl.runs():
            name = f"{acl.name}-{(len(pairs) + 1) * 10}"
            out += [*_acl(name, acl.family, run), "#"]
            match = "acl name" if acl.family == 4 else "acl ipv6 name"
            classifiers += [
                f"traffic classifier {name} operator and",
                f" if-match {match} {name}",
                "#",
            ]
            pairs.append((name, "FUYUN-FORWARD" if run.action == "permit" else "FUYUN-DROP"))
    if policies:
        out += classifiers
        out += [
            "traffic behavior FUYUN-DROP",
            " filter deny",
            "#",
            "traffic behavior FUYUN-FORWARD",
            " filter permit",
            "#",
        ]
    for vlan, pairs in sorted(policies.items()):
        out.append(f"qos policy FUYUN-VLAN{vlan}")
        out += [f" classifier {c} behavior {b}" for c, b in pairs]
        out.append("#")
    for vlan in sorted(policies):
        out += [
            f"qos vlan-policy FUYUN-VLAN{vlan} vlan {vlan} inbound",
            f"qos vlan-policy FUYUN-VLAN{vlan} vlan {vlan} outbound",
        ]
    out.append("#")
    return "\n".join(out) + "\n"


def _mac(mac: str) -> str:
    """``fa:16:3e:00:00:01`` as Comware writes it: ``fa16-3e00-0001``."""
    digits = mac.replace(":", "").lower()
    return "-".join(digits[i : i + 4] for i in (0, 4, 8))


def _group(group: ObjectGroup) -> list[str]:
    kind = "ip" if group.family == 4 else "ipv6"
    lines = [f"object-group {kind} address {group.name}"]
    for i, prefix in enumerate(group.prefixes, start=1):
        net = ipaddress.ip_network(prefix)
        if net.prefixlen == net.max_prefixlen:
            item = f"network host address {net.network_address}"
        elif net.version == 4:
            item = f"network subnet {net.network_address} {net.netmask}"
        else:
            item = f"network subnet {net.network_address} {net.prefixlen}"
        lines.append(f" {i * 10} {item}")
    return lines


def _acl(name: str, family: int, run: Run) -> list[str]:
    head = f"acl advanced name {name}" if family == 4 else f"acl ipv6 advanced name {name}"
    remarks = [r for r, _ in run.entries if r]
    lines = [head]
    if remarks:
        lines.append(f" description {'; '.join(remarks)}"[:128])
    for i, (_, entry) in enumerate(run.entries, start=1):
        lines.append(f" rule {i * 10} {entry_text(entry, family)}")
    return lines


def entry_text(e: Entry, family: int) -> str:
    """One rule, always ``permit``: the classifier's behaviour says what a match means."""
    proto = _PROTO6.get(e.protocol, e.protocol) if family == 6 else e.protocol
    parts = [
        "permit",
        proto,
        *_addr("source", e.src, family),
        *_ports("source", e.src_ports),
        *_addr("destination", e.dst, family),
        *_ports("destination", e.dst_ports),
    ]
    if e.icmp_type is not None:
        parts += ["icmp6-type" if family == 6 else "icmp-type", str(e.icmp_type)]
    if e.established:
        parts.append("established")
    return " ".join(parts)


def _addr(side: str, a: Addr, family: int) -> list[str]:
    if a.kind == "any":
        return []
    if a.kind == "group":
        return [side, "object-group", a.value]
    net = ipaddress.ip_network(
        a.value if a.kind == "prefix" else f"{a.value}/{32 if family == 4 else 128}"
    )
    if net.version == 4:
        return [side, str(net.network_address), str(net.hostmask)]
    return [side, str(net.network_address), str(net.prefixlen)]


def _ports(side: str, ports: tuple[int, int] | None) -> list[str]:
    if ports is None:
        return []
    lo, hi = ports
    return (
        [f"{side}-port", "eq", str(lo)] if lo == hi else [f"{side}-port", "range", str(lo), str(hi)]
    )
