"""The ToR model against the intent, for random rules: the stateless ACL is exact.

Hypothesis draws groups, memberships and rules (any protocol, overlapping port
ranges, CIDRs that cover part of a group, remote groups, global denies) for one
tenant spread over two VLANs of one ToR; every VLAN ACL the model builds must
decide every probe between local and outside addresses as the IR does, and let
the replies of tcp and icmp flows back.
"""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuyun.policy.compile import GlobalRule, GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import Action, DevicePolicy, Direction, Endpoint, device_name
from fuyun.policy.render._tor import build
from fuyun.verify.evaluate import Service, probes
from tests.policy.acl_eval import Packet, decide
from tests.policy.intent import allowed

CIDRS = ["10.2.0.0/16", "10.2.0.0/30", "10.2.0.5/32", "198.51.100.0/24", None]
PORTS = [None, (22, 22), (80, 443), (400, 8080), (1, 1024)]
OUTSIDE = ["198.51.100.7", "10.2.9.9", "192.0.2.1"]


@st.composite
def worlds(draw: st.DrawFn) -> DevicePolicy:
    groups = [uuid.UUID(int=(0x50 + g) << 112) for g in range(draw(st.integers(1, 3)))]
    rules: dict[uuid.UUID, list[GroupRule]] = {g: [] for g in groups}
    n = 0
    for g in groups:
        for _ in range(draw(st.integers(0, 4))):
            n += 1
            ports = draw(st.sampled_from(PORTS))
            protocol = draw(
                st.sampled_from(["tcp", "udp", "any"] if ports else ["tcp", "udp", "icmp", "any"])
            )
            remote = draw(st.sampled_from(["cidr", "group", "any"]))
            rules[g].append(
                GroupRule(
                    uuid.UUID(int=n),
                    g,
                    draw(st.sampled_from(list(Direction))),
                    4,
                    protocol,
                    ports[0] if ports else None,
                    ports[1] if ports else None,
                    remote_cidr=draw(st.sampled_from(CIDRS)) if remote == "cidr" else None,
                    remote_group_id=draw(st.sampled_from(groups)) if remote == "group" else None,
                )
            )
    endpoints = []
    for i in range(draw(st.integers(1, 5))):
        port = uuid.UUID(int=((0x600 + i) << 108) | i)
        endpoints.append(
            Endpoint(
                port,
                uuid.UUID(int=1),
                uuid.UUID(int=2),
                uuid.UUID(int=3),
                uuid.UUID(int=4),
                draw(st.sampled_from([10, 11])),
                f"fa:16:3e:00:01:{i:02x}",
                (f"10.2.0.{i + 4}",),
                frozenset(draw(st.sets(st.sampled_from(groups)))),
                device=device_name(port),
            )
        )
    members = {g: {4: {e.ips[0] for e in endpoints if g in e.groups}, 6: set()} for g in groups}
    global_rules = [
        GlobalRule(uuid.UUID(int=900), Action.DENY, Direction.INGRESS, 4, "tcp", 23, 23)
    ]
    if draw(st.booleans()):
        global_rules.append(
            GlobalRule(
                uuid.UUID(int=901),
                Action.DENY,
                Direction.EGRESS,
                4,
                "any",
                remote_cidr="192.0.2.0/24",
            )
        )
    snap = PolicySnapshot(rules=rules, members=members, global_rules=global_rules)
    return compile_device(snap, "tor9", "tor-acl", endpoints, vlans=[10, 11])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_vlan_acls_decide_like_the_intent(policy: DevicePolicy) -> None:
    model = build(policy)
    groups = {g.name: g for g in model.groups}
    services = [
        *probes([r for p in policy.ports for r in (*p.ingress, *p.egress)]),
        Service("tcp", 23),
    ]
    for acl in model.acls:
        if acl.family != 4:
            continue
        entries = acl.entries()
        sides: dict[str, Endpoint | None] = {ip: None for ip in OUTSIDE}
        for p in policy.ports:
            sides[p.endpoint.ips[0]] = p.endpoint if p.endpoint.vlan == acl.vlan else None
        for src_ip, src in sides.items():
            for dst_ip, dst in sides.items():
                if src_ip == dst_ip or (src is None and dst is None):
                    continue
                for svc in services:
                    want = allowed(policy, src, src_ip, dst, dst_ip, svc)
                    first = Packet.first(src_ip, dst_ip, svc)
                    assert (decide(entries, first, groups) == "permit") == want, (
                        acl.vlan,
                        src_ip,
                        dst_ip,
                        svc,
                    )
                    if want and svc.protocol in ("tcp", "icmp"):
                        assert decide(entries, first.reply(), groups) == "permit", (
                            "reply",
                            acl.vlan,
                            src_ip,
                            dst_ip,
                            svc,
                        )
