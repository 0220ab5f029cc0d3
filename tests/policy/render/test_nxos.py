"""NX-OS renderer: the text parses back (ciscoconfparse2) to the model and to the intent.

Round trip: parse(render(policy)) holds the VLANs, VRFs, object groups and, per
VLAN, the first-match list of the model. Intent: that parsed list, judged by an
independent ACL evaluator, decides every probe between local and outside
addresses exactly as the IR does (verify's evaluator), and lets replies back.
"""

from __future__ import annotations

import pytest

from fuyun.policy.ir import DevicePolicy, Endpoint, from_json, to_json
from fuyun.policy.render import nxos
from fuyun.policy.render._tor import build
from fuyun.policy.render.nxos_parse import ParsedNxos, parse_entry, parse_nxos
from fuyun.verify.evaluate import Service
from tests.policy.acl_eval import Packet, decide
from tests.policy.intent import allowed
from tests.policy.world import ENDPOINTS, tor_policy
from tests.support.capabilities import missing

SERVICES = [
    Service("tcp", 80),
    Service("tcp", 443),
    Service("tcp", 22),
    Service("tcp", 23),
    Service("tcp", 5432),
    Service("udp", 11211),
    Service("udp", 53),
    Service("icmp"),
]
OUTSIDE = {
    4: ["198.51.100.7", "203.0.113.5", "192.0.2.5", "10.1.2.50", "10.1.0.11"],
    6: ["2001:db8:9::7", "2001:db8:ffff::5", "2001:db8:1:2::50", "2001:db8:1::11"],
}


@pytest.fixture(scope="module")
def parsed() -> ParsedNxos:
    try:
        import ciscoconfparse2  # noqa: F401
    except ImportError as exc:
        missing("ciscoconfparse2", f"{exc} (pip install -e '.[test]')")
    return parse_nxos(nxos.render(tor_policy()))


def test_vlans_and_vrfs_are_those_of_the_policy(parsed: ParsedNxos) -> None:
    policy = tor_policy()
    vlans = set(policy.vlans) | {e.vlan for e in ENDPOINTS}
    assert parsed.vlans == {v: f"fuyun-{v}" for v in sorted(vlans)}
    assert set(parsed.vrfs) == {f"fy-{e.vrf_id.hex[:16]}" for e in ENDPOINTS}
    with_ports = {e.vlan for e in ENDPOINTS}
    assert parsed.filters == {v: f"FUYUN-VLAN{v}" for v in with_ports}  # 300 is transit


def test_each_host_trunk_parses_back_to_its_vlans(parsed: ParsedNxos) -> None:
    policy = tor_policy()
    assert parsed.trunks == {t.interface: (t.host, t.vlans) for t in policy.trunks}
    assert parsed.trunks["Ethernet1/10"] == ("h3", ()), "a host without ports allows none"
    assert list(parsed.trunks) == ["Ethernet1/1", "Ethernet1/2", "Ethernet1/10"], "port order"
    assert from_json(to_json(policy)).trunks == policy.trunks


def test_each_ports_binding_is_source_guarded_on_its_hosts_interface(parsed: ParsedNxos) -> None:
    interface_of = {t.host: t.interface for t in tor_policy().trunks}
    expected = {
        (interface_of[e.host or ""], e.vlan, ip, e.mac)
        for e in ENDPOINTS
        for ip in e.addresses(4)  # NX-OS IP source guard is IPv4
    }
    assert parsed.bindings == expected
    assert parsed.guarded == {i for i, *_ in expected}
    assert "Ethernet1/10" not in parsed.guarded, "no port, no guard"


def test_round_trip_equals_the_model(parsed: ParsedNxos) -> None:
    model = build(tor_policy())
    assert parsed.groups == {g.name: g for g in model.groups}
    for acl in model.acls:
        assert parsed.vlan_entries(acl.vlan, acl.family) == acl.entries()


def test_only_permits_in_lists_and_arp_last(parsed: ParsedNxos) -> None:
    """NX-OS VACLs take no deny entries; the map's action carries the verdict."""
    for _, entries in parsed.acls.values():
        assert {e.action for e in entries} == {"permit"}
    for seqs in parsed.access_maps.values():
        assert [s[1] for s in seqs][-1] == "FUYUN-ARP"
        assert all(acl in parsed.acls or acl == "FUYUN-ARP" for _, acl, _ in seqs)
        assert {action for _, _, action in seqs} == {"forward", "drop"}
    referenced = {
        a.value
        for _, entries in parsed.acls.values()
        for e in entries
        for a in (e.src, e.dst)
        if a.kind == "group"
    }
    assert referenced <= set(parsed.groups)


def _samples(policy: DevicePolicy, vlan: int, family: int) -> dict[str, Endpoint | None]:
    """Addresses to probe: the VLAN's ports (as themselves) and everyone else (as outside)."""
    out: dict[str, Endpoint | None] = {ip: None for ip in OUTSIDE[family]}
    for p in policy.ports:
        for ip in p.endpoint.addresses(family):
            if p.endpoint.vlan == vlan:
                out[ip] = p.endpoint
            else:
                out.setdefault(ip, None)
    return out


@pytest.mark.parametrize(("vlan", "family"), [(v, f) for v in (100, 101, 200) for f in (4, 6)])
def test_parsed_acl_decides_like_the_intent(parsed: ParsedNxos, vlan: int, family: int) -> None:
    policy = tor_policy()
    entries = parsed.vlan_entries(vlan, family)
    samples = _samples(policy, vlan, family)
    checked = 0
    for src_ip, src in samples.items():
        for dst_ip, dst in samples.items():
            if src_ip == dst_ip or (src is None and dst is None):
                continue
            for svc in SERVICES:
                want = allowed(policy, src, src_ip, dst, dst_ip, svc)
                first = Packet.first(src_ip, dst_ip, svc)
                assert (decide(entries, first, parsed.groups) == "permit") == want, (
                    vlan,
                    src_ip,
                    dst_ip,
                    svc,
                )
                checked += 1
                if want and (svc.protocol != "udp" or dst is not None):
                    # Replies pass — for udp only where the receiver's rule names the port
                    # (an egress-any rule has no stateless udp reply path, by design).
                    assert decide(entries, first.reply(), parsed.groups) == "permit", (
                        "reply",
                        vlan,
                        src_ip,
                        dst_ip,
                        svc,
                    )
    assert checked > 50


def test_entries_parse_exactly() -> None:
    e = parse_entry("  70 permit tcp addrgroup a eq 22 203.0.113.0/24 established")
    assert e is not None and e.src.value == "a" and e.src_ports == (22, 22) and e.established
    assert parse_entry("  10 remark anything at all") is None
    with pytest.raises(Exception, match="cannot read"):
        parse_entry("  10 permit tcp any any bogus")
