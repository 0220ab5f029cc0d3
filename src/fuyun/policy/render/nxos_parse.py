"""Read NX-OS-style text back into the ``tor-acl`` model, to prove it says what we meant.

A renderer that only has golden files can be wrong in a way that looks right. This
module parses the rendered text with an independent parser (``ciscoconfparse2``,
a test-time dependency imported on first use) into the same vocabulary
:mod:`._tor` builds — VLANs, VRFs, object groups, and for each VLAN the ordered
first-match entries the switch will apply, with each access-map entry's action
restored onto its permit-only list. Tests compare that with the model and
evaluate it against packets.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from fuyun.domain.errors import InvalidInput
from fuyun.policy.render._tor import ANY, Addr, Entry, ObjectGroup


@dataclass(frozen=True)
class ParsedNxos:
    vlans: dict[int, str]  # VLAN -> name
    vrfs: tuple[str, ...]
    groups: dict[str, ObjectGroup]
    acls: dict[str, tuple[int, tuple[Entry, ...]]]  # name -> (family, entries as written)
    access_maps: dict[str, tuple[tuple[int, str, str], ...]]  # map -> (seq, list, action)
    filters: dict[int, str]  # VLAN -> access map
    svis: dict[int, tuple[str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # VLAN -> (VRF, addresses)
    trunks: dict[str, tuple[str, tuple[int, ...]]] = field(
        default_factory=dict
    )  # interface -> (host, allowed VLANs)
    # IP source guard: (interface, VLAN, address, MAC as aa:bb:...) and guarded interfaces.
    bindings: set[tuple[str, int, str, str]] = field(default_factory=set)
    guarded: set[str] = field(default_factory=set)
    # Route leaks: (VRF, prefix, next hop, VRF the next hop is resolved in).
    routes: set[tuple[str, str, str, str]] = field(default_factory=set)

    def vlan_entries(self, vlan: int, family: int) -> list[Entry]:
        """The first-match list the switch applies to one family of a VLAN's traffic."""
        out: list[Entry] = []
        for _, acl, action in self.access_maps.get(self.filters.get(vlan, ""), ()):
            fam, entries = self.acls.get(acl, (0, ()))
            if fam == family:
                verdict = "permit" if action == "forward" else "deny"
                out += [replace(e, action=verdict) for e in entries]
        return out


def parse_nxos(text: str) -> ParsedNxos:
    """Parse fuyun's NX-OS-style output; raise InvalidInput on anything it did not write."""
    from ciscoconfparse2 import CiscoConfParse  # test-time dependency

    conf = CiscoConfParse(text.splitlines(), syntax="nxos")
    vlans: dict[int, str] = {}
    for obj in conf.find_objects(r"^vlan \d+$"):
        names = [
            c.text.split(None, 1)[1] for c in obj.children if c.text.strip().startswith("name ")
        ]
        vlans[int(obj.text.split()[1])] = names[0] if names else ""
    vrfs = tuple(o.text.split()[2] for o in conf.find_objects(r"^vrf context "))
    routes = set()
    for obj in conf.find_objects(r"^vrf context "):
        for child in obj.children:
            words = child.text.split()  # ip|ipv6 route P NEXTHOP vrf PEER
            if len(words) != 6 or words[0] not in ("ip", "ipv6") or words[1] != "route":
                raise InvalidInput(f"unexpected line under {obj.text}: {child.text.strip()}")
            if words[4] != "vrf" or words[5] not in vrfs:
                raise InvalidInput(f"{child.text.strip()} resolves in an undeclared VRF")
            prefix = str(ipaddress.ip_network(words[2]))
            nexthop = str(ipaddress.ip_address(words[3]))
            routes.add((obj.text.split()[2], prefix, nexthop, words[5]))
    groups = {}
    for obj in conf.find_objects(r"^object-group (ip|ipv6) address "):
        _, kind, _, name = obj.text.split()
        family = 4 if kind == "ip" else 6
        groups[name] = ObjectGroup(
            name, family, tuple(_group_item(c.text, family) for c in obj.children)
        )
    acls = {}
    for obj in conf.find_objects(r"^(ip|ipv6) access-list "):
        kind, _, name = obj.text.split()
        family = 4 if kind == "ip" else 6
        acls[name] = (
            family,
            tuple(e for c in obj.children if (e := parse_entry(c.text)) is not None),
        )
    maps: dict[str, list[tuple[int, str, str]]] = {}
    for obj in conf.find_objects(r"^vlan access-map "):
        _, _, name, seq = obj.text.split()
        body = {c.text.split()[0]: c.text.split() for c in obj.children}
        maps.setdefault(name, []).append((int(seq), body["match"][3], body["action"][1]))
    filters = {}
    for obj in conf.find_objects(r"^vlan filter "):
        _, _, name, _, vlan_list = obj.text.split()
        for vlan in vlan_list.split(","):
            filters[int(vlan)] = name
    svis = {}
    for obj in conf.find_objects(r"^interface Vlan\d+$"):
        vlan = int(obj.text.split()[1].removeprefix("Vlan"))
        vrf, addresses = "", []
        for child in obj.children:
            words = child.text.split()
            if words[:2] == ["vrf", "member"]:
                vrf = words[2]
            elif words[1:2] == ["address"] and words[0] in ("ip", "ipv6"):
                addresses.append(str(ipaddress.ip_interface(words[2])))
            elif words != ["no", "shutdown"]:
                raise InvalidInput(f"unexpected line under {obj.text}: {child.text.strip()}")
        if vrf not in vrfs:
            raise InvalidInput(f"{obj.text} is a member of undeclared VRF '{vrf}'")
        svis[vlan] = (vrf, tuple(addresses))
    trunks, guarded = {}, set()
    for obj in conf.find_objects(r"^interface (?!Vlan)\S+$"):
        lines = [c.text.strip() for c in obj.children]
        if "ip verify source dhcp-snooping-vlan" in lines:
            guarded.add(obj.text.split()[1])
            lines.remove("ip verify source dhcp-snooping-vlan")
        trunks[obj.text.split()[1]] = _trunk(obj.text, lines)
    bindings = set()
    for obj in conf.find_objects(r"^ip source binding "):
        words = obj.text.split()  # ip source binding A MAC vlan V interface IF
        if len(words) != 9 or words[5] != "vlan" or words[7] != "interface":
            raise InvalidInput(f"unexpected source binding: {obj.text}")
        mac = words[4].replace(".", "")
        mac = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
        bindings.add((words[8], int(words[6]), str(ipaddress.ip_address(words[3])), mac))
    return ParsedNxos(
        vlans,
        vrfs,
        groups,
        acls,
        {k: tuple(sorted(v)) for k, v in maps.items()},
        filters,
        svis,
        trunks,
        bindings,
        guarded,
        routes,
    )


def _trunk(head: str, lines: list[str]) -> tuple[str, tuple[int, ...]]:
    """(host, allowed VLANs) of a host-facing interface; only trunk lines are expected."""
    host, allowed, mode = "", None, ""
    for line in lines:
        words = line.split()
        if words[:3] == ["description", "fuyun", "host"]:
            host = words[3]
        elif words[:4] == ["switchport", "trunk", "allowed", "vlan"]:
            allowed = _vlan_list(words[4])
        elif words[:2] == ["switchport", "mode"]:
            mode = words[2]
        elif words != ["switchport"]:
            raise InvalidInput(f"unexpected line under {head}: {line}")
    if mode != "trunk" or allowed is None:
        raise InvalidInput(f"{head} is not a trunk with an allowed VLAN list")
    return host, allowed


def _vlan_list(text: str) -> tuple[int, ...]:
    if text == "none":
        return ()
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return tuple(out)


def _group_item(line: str, family: int) -> str:
    words = line.split()
    if words[1] == "host":
        return f"{words[2]}/{32 if family == 4 else 128}"
    return str(ipaddress.ip_network(words[1]))


def parse_entry(line: str) -> Entry | None:
    """One ACE (``seq action proto src [ports] dst [ports] [type] [established]``)."""
    words = line.split()
    if len(words) < 2 or words[1] == "remark":
        return None
    try:
        action, proto = words[1], words[2]
        i = 3
        src, i = _address(words, i)
        src_ports, i = _port_op(words, i)
        dst, i = _address(words, i)
        dst_ports, i = _port_op(words, i)
        icmp_type = None
        established = False
        for word in words[i:]:
            if word == "established":
                established = True
            elif word.isdigit() and proto == "icmp":
                icmp_type = int(word)
            else:
                raise ValueError(word)
    except (IndexError, ValueError) as exc:
        raise InvalidInput(f"cannot read ACL entry {line.strip()!r}", field="acl") from exc
    return Entry(
        action,
        "ip" if proto == "ipv6" else proto,
        src,
        dst,
        src_ports,
        dst_ports,
        established,
        icmp_type,
    )


def _address(words: list[str], i: int) -> tuple[Addr, int]:
    if words[i] == "any":
        return ANY, i + 1
    if words[i] == "host":
        return Addr("host", str(ipaddress.ip_address(words[i + 1]))), i + 2
    if words[i] == "addrgroup":
        return Addr("group", words[i + 1]), i + 2
    return Addr("prefix", str(ipaddress.ip_network(words[i]))), i + 1


def _port_op(words: list[str], i: int) -> tuple[tuple[int, int] | None, int]:
    if i < len(words) and words[i] == "eq":
        port = int(words[i + 1])
        return (port, port), i + 2
    if i < len(words) and words[i] == "range":
        return (int(words[i + 1]), int(words[i + 2])), i + 3
    return None, i
