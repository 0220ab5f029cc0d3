"""``tor-acl`` for NX-OS-style switches: VLANs, VRFs, object groups and VLAN ACLs.

The meaning of every entry — stateless stand-ins for conntrack, the intra-VLAN
AND, the section order — is defined once in :mod:`._tor`; this module only spells
it, and :mod:`.nxos_parse` reads it back so tests can prove the text says what
the policy means.

Format (one block per object, in this order, every list sorted):

- ``vlan N`` / ``name fuyun-N`` for every VLAN the ToR carries;
- ``vrf context fy-<vrf id prefix>`` for every tenant VRF with endpoints here, holding
  the static routes of approved route leaks, ``ip route P/len NEXTHOP vrf fy-<peer>``
  (``ipv6 route`` for IPv6): the next hop — the peer subnet's gateway — is resolved in
  the peer VRF, which is declared too;
- ``object-group ip address`` / ``object-group ipv6 address`` for address sets,
  endpoint classes (``fuyun-v<N>-c<i>-v<f>``) and a VLAN's local addresses
  (``fuyun-v<N>-local-v<f>``), entries numbered 10, 20, …; empty groups are left
  out (an entry that would reference one can match nothing and is not emitted);
- per VLAN and family, the ordered entries cut into runs of one action; each run
  is an ``ip access-list FUYUN-VLAN<N>-<seq>`` (IPv6: ``ipv6 access-list
  FUYUN6-VLAN<N>-<seq>``) of ``permit`` entries only — NX-OS VACLs do not support
  ``deny`` entries — numbered 10, 20, … with a ``remark`` opening each section;
  addresses ``any``, ``host A`` (IPv4), ``P/len``, ``addrgroup NAME``; ports
  ``eq P`` or ``range A B``; ICMP types by number; ``established`` on tcp replies;
- ``vlan access-map FUYUN-VLAN<N> <seq>`` entries, one per run, ``match ip|ipv6
  address`` + ``action forward|drop``: the switch applies the action of the first
  map entry whose list permits the packet, which is the model's first-match;
  the last run of each family matches everything and drops;
- ``mac access-list FUYUN-ARP`` and a final ``action forward`` map entry for it
  (MAC lists see only non-IP frames), so ARP survives the filter;
- ``vlan filter FUYUN-VLAN<N> vlan-list N``. A VACL sees bridged traffic once
  and routed traffic entering and leaving the VLAN, which is what :mod:`._tor`'s
  section order relies on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

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

ARP_ACL = "FUYUN-ARP"


def render(policy: DevicePolicy) -> str:
    """The ToR's fuyun configuration as NX-OS-style CLI text."""
    return render_config(build(policy))


def render_config(config: TorConfig) -> str:
    out = [
        f"!Command: fuyun tor-acl for {config.device} (NX-OS style)",
        "!Generated from the enforcement IR; apply as a whole. Do not edit.",
        "!",
    ]
    for vlan in config.vlans:
        out += [f"vlan {vlan}", f"  name fuyun-{vlan}"]
    out.append("!")
    routes: dict[str, list[str]] = {}  # approved route leaks: next hop in the peer VRF
    for r in config.routes:
        family = "ipv6" if ":" in r.prefix else "ip"
        routes.setdefault(r.vrf, []).append(f"  {family} route {r.prefix} {r.nexthop} vrf {r.via}")
    for name, _tenant in config.vrfs:
        out.append(f"vrf context {name}")
        out += routes.get(name, [])
    out.append("!")
    if config.svis:
        out += ["feature interface-vlan", "!"]
    for svi in config.svis:
        out += [f"interface Vlan{svi.vlan}", "  no shutdown", f"  vrf member {svi.vrf}"]
        for address in svi.addresses:
            out.append(f"  {'ipv6' if ':' in address else 'ip'} address {address}")
        out.append("!")
    guarded = {b.interface for b in config.bindings if ":" not in b.address}
    if guarded:  # IP source guard checks IPv4 against the DHCP snooping binding table
        snooped = sorted({b.vlan for b in config.bindings if ":" not in b.address})
        out += [
            "feature dhcp",
            "ip dhcp snooping",
            f"ip dhcp snooping vlan {_vlan_list(tuple(snooped))}",
        ]
        for b in config.bindings:
            if ":" not in b.address:
                out.append(
                    f"ip source binding {b.address} {_mac(b.mac)} vlan {b.vlan} "
                    f"interface {b.interface}"
                )
        out.append("!")
    for trunk in config.trunks:
        out += [
            f"interface {trunk.interface}",
            f"  description fuyun host {trunk.host}",
            "  switchport",
            "  switchport mode trunk",
            f"  switchport trunk allowed vlan {_vlan_list(trunk.vlans) or 'none'}",
        ]
        if trunk.interface in guarded:
            out.append("  ip verify source dhcp-snooping-vlan")
        out.append("!")
    for group in config.groups:
        out += _group(group)
    out.append("!")
    maps: dict[int, list[tuple[int, str, str, str]]] = {}
    for acl in config.acls:
        seq_map = maps.setdefault(acl.vlan, [])
        for run in acl.runs():
            seq = (len(seq_map) + 1) * 10
            name = f"{acl.name}-{seq}"
            out += _acl(name, acl.family, run)
            seq_map.append(
                (
                    seq,
                    "ip" if acl.family == 4 else "ipv6",
                    name,
                    "forward" if run.action == "permit" else "drop",
                )
            )
    if maps:
        out += [f"mac access-list {ARP_ACL}", "  10 permit any any 0x0806", "!"]
    for vlan, seq_map in sorted(maps.items()):
        name = f"FUYUN-VLAN{vlan}"
        seq_map.append(((len(seq_map) + 1) * 10, "mac", ARP_ACL, "forward"))
        for seq, kind, acl_name, action in seq_map:
            out += [
                f"vlan access-map {name} {seq}",
                f"  match {kind} address {acl_name}",
                f"  action {action}",
            ]
        out += [f"vlan filter {name} vlan-list {vlan}", "!"]
    return "\n".join(out) + "\n"


def _vlan_list(vlans: tuple[int, ...]) -> str:
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in vlan_ranges(vlans))


def _mac(mac: str) -> str:
    """``fa:16:3e:00:00:01`` as NX-OS writes it: ``fa16.3e00.0001``."""
    digits = mac.replace(":", "").lower()
    return ".".join(digits[i : i + 4] for i in (0, 4, 8))


def _group(group: ObjectGroup) -> list[str]:
    kind = "ip" if group.family == 4 else "ipv6"
    lines = [f"object-group {kind} address {group.name}"]
    for i, prefix in enumerate(group.prefixes, start=1):
        net = ipaddress.ip_network(prefix)
        item = (
            f"host {net.network_address}" if net.version == 4 and net.prefixlen == 32 else str(net)
        )
        lines.append(f"  {i * 10} {item}")
    return lines


def _acl(name: str, family: int, run: Run) -> list[str]:
    """One run as a permit-only list: the access map's action says what a match means."""
    lines = [f"{'ip' if family == 4 else 'ipv6'} access-list {name}"]
    seq = 0
    for remark, entry in run.entries:
        if remark:
            seq += 10
            lines.append(f"  {seq} remark {remark}")
        seq += 10
        lines.append(f"  {seq} {entry_text(replace(entry, action='permit'), family)}")
    lines.append("!")
    return lines


def entry_text(e: Entry, family: int) -> str:
    """One ACE without its sequence number."""
    proto = "ipv6" if e.protocol == "ip" and family == 6 else e.protocol
    parts = [
        e.action,
        proto,
        _addr(e.src),
        *_ports(e.src_ports),
        _addr(e.dst),
        *_ports(e.dst_ports),
    ]
    if e.icmp_type is not None:
        parts.append(str(e.icmp_type))
    if e.established:
        parts.append("established")
    return " ".join(parts)


def _addr(a: Addr) -> str:
    if a.kind == "any":
        return "any"
    if a.kind == "host":
        return f"host {a.value}"
    if a.kind == "group":
        return f"addrgroup {a.value}"
    return a.value


def _ports(ports: tuple[int, int] | None) -> list[str]:
    if ports is None:
        return []
    lo, hi = ports
    return ["eq", str(lo)] if lo == hi else ["range", str(lo), str(hi)]
