"""OpenFlow renderer: ovs-ofctl parses every table, the flow count is additive, and a
real Open vSwitch classifier (``ofproto/trace``) enforces exactly the IR's semantics.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuyun.policy.compile import GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import DevicePolicy, Direction, Endpoint, device_name
from fuyun.policy.render import openflow
from fuyun.verify.evaluate import Service
from tests.policy.intent import allowed
from tests.policy.ovs_lab import OvsLab, ovs_lab
from tests.policy.tools import run, tool
from tests.policy.world import ENDPOINTS, host_policy

BRIDGE = "fyt0"
OUTSIDE_MAC = "02:00:00:00:99:99"


def _flows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize(
    "policy",
    [host_policy(), DevicePolicy("h0", "vswitch", ()), host_policy("h6", [ENDPOINTS[5]])],
    ids=["world", "no-ports", "v6-only-port"],
)
def test_ovs_ofctl_parses_every_flow(policy: DevicePolicy, tmp_path: Path) -> None:
    ofctl = tool("openvswitch-switch", "ovs-ofctl")
    path = tmp_path / "flows"
    text = openflow.render(policy)
    path.write_text(text)
    result = run([ofctl, "parse-flows", str(path)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("_FLOW_MOD") == len(_flows(text))


def test_ovs_ofctl_rejects_a_broken_flow(tmp_path: Path) -> None:
    ofctl = tool("openvswitch-switch", "ovs-ofctl")
    path = tmp_path / "flows"
    path.write_text(openflow.render(host_policy()).replace("tcp_dst=5432", "tcp_dst=x", 1))
    assert run([ofctl, "parse-flows", str(path)]).returncode != 0


def test_one_flow_per_match_with_conjunctions_merged() -> None:
    keys = [re.sub(r",actions=.*", "", f) for f in _flows(openflow.render(host_policy()))]
    assert len(keys) == len(set(keys))  # OVS would silently replace duplicates


# -- growth: ports + rules + members, never their product -------------------------------------


def _scaled(ports: int, rules: int, members: int) -> DevicePolicy:
    tenant, vrf, web, clients = (uuid.UUID(int=(n << 112) | n) for n in (1, 2, 3, 4))
    group_rules = [
        GroupRule(
            uuid.UUID(int=1000 + i),
            web,
            Direction.INGRESS,
            4,
            "tcp",
            2000 + 10 * i,
            2003 + 10 * i,
            remote_group_id=clients,
        )
        for i in range(rules)
    ]
    group_rules.append(GroupRule(uuid.UUID(int=999), web, Direction.EGRESS, 4))
    snap = PolicySnapshot(
        rules={web: group_rules},
        members={
            # Odd host numbers: members that no prefix can collapse, so each costs a flow.
            clients: {4: {f"172.16.{i // 100}.{i % 100 * 2 + 1}" for i in range(members)}, 6: set()}
        },
    )
    endpoints = []
    for i in range(ports):
        port = uuid.UUID(int=((0x100 + i) << 108) | i)
        endpoints.append(
            Endpoint(
                port,
                tenant,
                vrf,
                uuid.UUID(int=5),
                uuid.UUID(int=6),
                10,
                f"fa:16:3e:01:{i // 256:02x}:{i % 256:02x}",
                (f"10.0.{i // 250}.{i % 250 + 1}",),
                frozenset({web}),
                device=device_name(port),
            )
        )
    return compile_device(snap, "h", "vswitch", endpoints)


def _count(ports: int, rules: int, members: int) -> int:
    return len(_flows(openflow.render(_scaled(ports, rules, members))))


@pytest.mark.parametrize(("rules", "members"), [(1, 1), (10, 100), (40, 400)])
def test_flow_count_grows_linearly_in_ports_independent_of_rules_and_members(
    rules: int, members: int
) -> None:
    n = 8
    step = _count(2 * n, rules, members) - _count(n, rules, members)
    assert _count(4 * n, rules, members) - _count(2 * n, rules, members) == 2 * step
    assert step == n * (_count(2, 1, 1) - _count(1, 1, 1))  # the same per-port cost


def test_flow_count_is_additive_not_multiplicative() -> None:
    base = _count(10, 10, 10)
    more_rules = _count(10, 20, 10) - base
    more_members = _count(10, 10, 110) - base
    assert _count(40, 20, 10) - _count(40, 10, 10) == more_rules  # rules cost the same ...
    assert _count(40, 10, 110) - _count(40, 10, 10) == more_members  # ... at any port count
    assert more_members == 100  # one clause flow per member
    per_port = _count(2, 1, 1) - _count(1, 1, 1)
    # Each rule costs its conj_id flow and its port masks (2 here); the rest is fixed.
    assert _count(50, 50, 500) <= per_port * 50 + 3 * 50 + 500 + _count(0, 0, 0)


# -- the real classifier ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvsLab]:
    with ovs_lab(tmp_path_factory.mktemp("ovs")) as lab:
        lab.add_bridge(BRIDGE)
        lab.replace_flows(BRIDGE, openflow.render(host_policy()))
        yield lab


def _passes(lab: OvsLab, flow: str, ct_state: str = "trk,new") -> bool:
    """True when the packet reaches the output table; False when a table drops it."""
    trace = lab.trace(BRIDGE, f"in_port=LOCAL,{flow}", ct_state)
    return re.search(r"^\s*30\. ", trace, re.M) is not None


def _packet(src: str, dst: str, src_mac: str, dst_mac: str, svc: Service) -> str:
    v6 = ":" in src
    fields = [f"dl_src={src_mac}", f"dl_dst={dst_mac}"]
    fields += [f"ipv6_src={src}", f"ipv6_dst={dst}"] if v6 else [f"nw_src={src}", f"nw_dst={dst}"]
    if svc.protocol == "icmp":
        fields.insert(0, "icmp6,icmpv6_type=128" if v6 else "icmp,icmp_type=8")
    else:
        fields.insert(0, svc.protocol + ("6" if v6 else ""))
        fields += [f"{svc.protocol}_src=40000", f"{svc.protocol}_dst={svc.port}"]
    return ",".join(fields)


SERVICES = [
    Service("tcp", 80),
    Service("tcp", 22),
    Service("tcp", 23),
    Service("tcp", 5432),
    Service("udp", 11211),
    Service("icmp"),
]
OUTSIDE = {
    4: ["198.51.100.7", "203.0.113.5", "192.0.2.5", "10.1.2.50"],
    6: ["2001:db8:9::7", "2001:db8:ffff::5", "2001:db8:1:2::50"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", [4, 6])
def test_open_vswitch_enforces_the_intent(lab: OvsLab, family: int) -> None:
    """Every local/outside pair and service: the switch decides what the IR decides."""
    policy = host_policy()
    sides = [(ip, e.mac, e) for e in ENDPOINTS for ip in e.addresses(family)]
    sides += [(ip, OUTSIDE_MAC, None) for ip in OUTSIDE[family]]
    checked = 0
    for src_ip, src_mac, src in sides:
        for dst_ip, dst_mac, dst in sides:
            if (src is None and dst is None) or src_ip == dst_ip:
                continue
            for svc in SERVICES:
                want = allowed(policy, src, src_ip, dst, dst_ip, svc)
                got = _passes(lab, _packet(src_ip, dst_ip, src_mac, dst_mac, svc))
                assert got == want, (src_ip, dst_ip, svc, want)
                checked += 1
    assert checked > 200


@pytest.mark.slow
def test_open_vswitch_guards(lab: OvsLab) -> None:
    web = ENDPOINTS[0]
    svc = Service("tcp", 80)
    out = _packet("198.51.100.7", "10.1.0.10", OUTSIDE_MAC, web.mac, Service("tcp", 9999))
    assert not _passes(lab, out)  # a new flow to a closed port ...
    assert _passes(lab, out, "trk,est")  # ... but a reply to one the VM opened
    assert not _passes(lab, out, "trk,inv")
    spoofed = _packet("10.1.0.99", "198.51.100.7", web.mac, OUTSIDE_MAC, svc)
    assert not _passes(lab, spoofed)
    arp = f"arp,dl_src={web.mac},dl_dst=ff:ff:ff:ff:ff:ff,arp_sha={web.mac},arp_op=1"
    assert _passes(lab, f"{arp},arp_spa=10.1.0.10,arp_tpa=10.1.0.1", "")
    assert not _passes(lab, f"{arp},arp_spa=10.1.0.99,arp_tpa=10.1.0.1", "")
    dhcp = (
        f"udp,dl_src={web.mac},dl_dst=ff:ff:ff:ff:ff:ff,nw_src=0.0.0.0,"
        "nw_dst=255.255.255.255,udp_src=68,udp_dst=67"
    )
    assert _passes(lab, dhcp)
    rogue = (
        f"udp,dl_src={web.mac},dl_dst=ff:ff:ff:ff:ff:ff,nw_src=10.1.0.10,"
        "nw_dst=255.255.255.255,udp_src=67,udp_dst=68"
    )
    assert not _passes(lab, rogue)
    broadcast = _packet("10.1.0.10", "10.1.0.255", web.mac, "ff:ff:ff:ff:ff:ff", svc)
    assert not _passes(lab, broadcast)


@pytest.mark.slow
def test_the_switch_holds_exactly_the_rendered_flows(lab: OvsLab) -> None:
    assert len(lab.dump_flows(BRIDGE)) == len(_flows(openflow.render(host_policy())))
