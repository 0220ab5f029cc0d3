"""Comware renderer: read back with a small parser, it is the model, run for run.

There is no Comware parser on PyPI; this one knows only what the renderer
writes, which is enough to prove the ACL rules, classifiers, behaviours and the
VLAN policy order carry the model's first-match list intact.
"""

from __future__ import annotations

import ipaddress
import re

from fuyun.policy.render import comware
from fuyun.policy.render._tor import ANY, Addr, Entry, build
from tests.policy.world import ENDPOINTS, tor_policy


def _addr(words: list[str], i: int, side: str) -> tuple[Addr, int]:
    if i >= len(words) or words[i] != side:
        return ANY, i
    if words[i + 1] == "object-group":
        return Addr("group", words[i + 2]), i + 3
    address, width = words[i + 1], words[i + 2]
    if ":" in address:
        return Addr("prefix", str(ipaddress.ip_network(f"{address}/{width}"))), i + 3
    length = 32 - bin(int(ipaddress.IPv4Address(width))).count("1")  # a wildcard mask
    net = ipaddress.ip_network(f"{address}/{length}")
    return (Addr("host", address) if net.prefixlen == 32 else Addr("prefix", str(net))), i + 3


def _ports(words: list[str], i: int, side: str) -> tuple[tuple[int, int] | None, int]:
    if i >= len(words) or words[i] != f"{side}-port":
        return None, i
    if words[i + 1] == "eq":
        return (int(words[i + 2]), int(words[i + 2])), i + 3
    return (int(words[i + 2]), int(words[i + 3])), i + 4


def _rule(line: str, action: str) -> Entry:
    words = line.split()[2:]  # drop "rule N"
    assert words[0] == "permit"
    proto = {"ipv6": "ip", "icmpv6": "icmp"}.get(words[1], words[1])
    src, i = _addr(words, 2, "source")
    sport, i = _ports(words, i, "source")
    dst, i = _addr(words, i, "destination")
    dport, i = _ports(words, i, "destination")
    icmp_type = None
    if i < len(words) and words[i] in ("icmp-type", "icmp6-type"):
        icmp_type, i = int(words[i + 1]), i + 2
    established = words[i:] == ["established"]
    assert words[i:] in ([], ["established"]), line
    return Entry(action, proto, src, dst, sport, dport, established, icmp_type)


def _blocks(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    head = ""
    for line in text.splitlines():
        if line.startswith("#"):
            head = ""
        elif not line.startswith(" "):
            head = line
            out[head] = []
        elif head:
            out[head].append(line.strip())
    return out


def test_vlan_policies_are_the_model_run_for_run() -> None:
    policy = tor_policy()
    text = comware.render(policy)
    blocks = _blocks(text)
    behaviours = {"FUYUN-FORWARD": "permit", "FUYUN-DROP": "deny"}
    assert blocks["traffic behavior FUYUN-DROP"] == ["filter deny"]
    assert blocks["traffic behavior FUYUN-FORWARD"] == ["filter permit"]
    for acl in build(policy).acls:
        pairs = [line.split() for line in blocks[f"qos policy FUYUN-VLAN{acl.vlan}"]]
        got: list[Entry] = []
        for _, classifier, _, behaviour in pairs:
            (match,) = blocks[f"traffic classifier {classifier} operator and"]
            kind = "acl advanced name" if acl.family == 4 else "acl ipv6 advanced name"
            if not match.endswith(f"name {classifier}") or f"{kind} {classifier}" not in blocks:
                continue  # the other family's runs
            rules = [r for r in blocks[f"{kind} {classifier}"] if r.startswith("rule ")]
            got += [_rule(r, behaviours[behaviour]) for r in rules]
        assert got == acl.entries(), (acl.vlan, acl.family)
        for direction in ("inbound", "outbound"):
            assert f"qos vlan-policy FUYUN-VLAN{acl.vlan} vlan {acl.vlan} {direction}" in text


def test_vlans_vpn_instances_and_groups() -> None:
    policy = tor_policy()
    blocks = _blocks(comware.render(policy))
    vlans = sorted(set(policy.vlans) | {e.vlan for e in ENDPOINTS})
    assert [h for h in blocks if h.startswith("vlan ")] == [f"vlan {v}" for v in vlans]
    assert {h.split()[-1] for h in blocks if h.startswith("ip vpn-instance ")} == {
        f"fy-{e.vrf_id.hex[:16]}" for e in ENDPOINTS
    }
    for group in build(policy).groups:
        kind = "ip" if group.family == 4 else "ipv6"
        items = blocks[f"object-group {kind} address {group.name}"]
        assert len(items) == len(group.prefixes)
        assert all(re.match(r"^\d+ network (host address|subnet) ", i) for i in items)
