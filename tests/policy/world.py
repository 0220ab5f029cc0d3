"""A small, fixed world for renderer tests: two tenants, groups web and db, v4 and v6.

Tenant rules per group (both tenants alike): web accepts tcp 80-443 from anywhere,
tcp 22 from 203.0.113.0/24 (v6: 2001:db8:ffff::/48) and udp 11211 from one peer
address (a CIDR that covers only part of the group); db accepts tcp 5432 from
its tenant's web group and tcp 22 from the same admin ranges; every group may send
anything (egress any, both families). Operators allow ICMP from 192.0.2.0/24 to
every port and deny tcp 23 in both families. Identifiers are fixed, so compiled
policies — and rendered text — are identical on every run.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from fuyun.policy.compile import GlobalRule, GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import (
    Action,
    DevicePolicy,
    Direction,
    Endpoint,
    Gateway,
    Route,
    Trunk,
    device_name,
)


def _id(n: int) -> uuid.UUID:
    """Distinct leading hex digits: names derived from id prefixes stay distinct."""
    return uuid.UUID(int=n << 112 | n)


T1, T2 = _id(0x11), _id(0x12)
VRF1, VRF2 = _id(0x21), _id(0x22)
WEB1, DB1 = _id(0x31), _id(0x32)
WEB2, DB2 = _id(0x41), _id(0x42)
ADMIN = {4: "203.0.113.0/24", 6: "2001:db8:ffff::/48"}
CACHE_PEER = {4: "10.1.0.11/32", 6: "2001:db8:1::11/128"}


def _rid(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x1000 + n)


def group_rules(web: uuid.UUID, db: uuid.UUID, base: int) -> dict[uuid.UUID, list[GroupRule]]:
    n = iter(range(base, base + 100))
    rules: dict[uuid.UUID, list[GroupRule]] = {web: [], db: []}
    for fam in (4, 6):
        rules[web] += [
            GroupRule(_rid(next(n)), web, Direction.INGRESS, fam, "tcp", 80, 443),
            # Cache peers: only the second web VM may reach the others' udp 11211.
            GroupRule(
                _rid(next(n)),
                web,
                Direction.INGRESS,
                fam,
                "udp",
                11211,
                11211,
                remote_cidr=CACHE_PEER[fam],
            ),
            GroupRule(
                _rid(next(n)), web, Direction.INGRESS, fam, "tcp", 22, 22, remote_cidr=ADMIN[fam]
            ),
            GroupRule(_rid(next(n)), web, Direction.EGRESS, fam),
        ]
        rules[db] += [
            GroupRule(
                _rid(next(n)), db, Direction.INGRESS, fam, "tcp", 5432, 5432, remote_group_id=web
            ),
            GroupRule(
                _rid(next(n)), db, Direction.INGRESS, fam, "tcp", 22, 22, remote_cidr=ADMIN[fam]
            ),
            GroupRule(_rid(next(n)), db, Direction.EGRESS, fam),
        ]
    return rules


# Each network's DHCP service answers on its subnets' gateways (VLAN 101's network is
# static-only: no DHCP service, so no DHCP for its ports).
DHCP = {100: ("10.1.0.1", "2001:db8:1::1"), 101: (), 200: ("10.1.0.1",)}


def endpoint(
    n: int,
    tenant: uuid.UUID,
    vrf: uuid.UUID,
    vlan: int,
    ips: tuple[str, ...],
    groups: set[uuid.UUID],
    host: str = "h1",
) -> Endpoint:
    port = _id(0xA0 + n)
    return Endpoint(
        port_id=port,
        tenant_id=tenant,
        vrf_id=vrf,
        network_id=uuid.UUID(int=0xB000 + vlan),
        segment_id=uuid.UUID(int=0xC000 + vlan),
        vlan=vlan,
        mac=f"fa:16:3e:00:00:{n:02x}",
        ips=ips,
        groups=frozenset(groups),
        host=host,
        device=device_name(port),
        dhcp=DHCP.get(vlan, ()),
    )


# Tenant 1: web on VLAN 100 (two VMs), db on VLAN 100 and VLAN 101. Tenant 2 reuses
# tenant 1's addresses in its own VRF: web (IPv4 only) and db (IPv6 only) on VLAN 200.
ENDPOINTS = [
    endpoint(1, T1, VRF1, 100, ("10.1.0.10", "2001:db8:1::10"), {WEB1}),
    endpoint(2, T1, VRF1, 100, ("10.1.0.11",), {WEB1}),
    endpoint(3, T1, VRF1, 100, ("10.1.0.20", "2001:db8:1::20"), {DB1}),
    endpoint(4, T1, VRF1, 101, ("10.1.1.21", "2001:db8:1:1::21"), {DB1}),
    endpoint(5, T2, VRF2, 200, ("10.1.0.10",), {WEB2}),
    endpoint(6, T2, VRF2, 200, ("2001:db8:2::30",), {DB2}, host="h2"),
]
# Web members that live elsewhere (another host or ToR) are still in the sets.
REMOTE_WEB = {WEB1: {4: {"10.1.2.50"}, 6: {"2001:db8:1:2::50"}}, WEB2: {4: set(), 6: set()}}


def snapshot() -> PolicySnapshot:
    rules = {**group_rules(WEB1, DB1, 0), **group_rules(WEB2, DB2, 100)}
    members: dict[uuid.UUID, dict[int, set[str]]] = {}
    for group in (WEB1, DB1, WEB2, DB2):
        members[group] = {4: set(), 6: set()}
        for e in ENDPOINTS:
            if group in e.groups:
                for fam in (4, 6):
                    members[group][fam] |= set(e.addresses(fam))
        for fam, extra in REMOTE_WEB.get(group, {}).items():
            members[group][fam] |= extra
    global_rules = [
        GlobalRule(
            _rid(900),
            Action.ALLOW,
            Direction.INGRESS,
            4,
            "icmp",
            remote_cidr="192.0.2.0/24",
            priority=10,
        ),
        GlobalRule(_rid(901), Action.DENY, Direction.INGRESS, 4, "tcp", 23, 23),
        GlobalRule(_rid(902), Action.DENY, Direction.INGRESS, 6, "tcp", 23, 23),
    ]
    return PolicySnapshot(rules=rules, members=members, global_rules=global_rules)


def host_policy(device: str = "h1", endpoints: list[Endpoint] | None = None) -> DevicePolicy:
    return compile_device(snapshot(), device, "vswitch", endpoints or ENDPOINTS)


def vm_policy(n: int = 1) -> DevicePolicy:
    e = ENDPOINTS[n - 1]
    return compile_device(snapshot(), f"vm-{e.port_id.hex[-4:]}", "vm-iptables", [e])


# tor1's host-facing trunks: h1 holds ports on three VLANs, h2 on one, h3 none yet.
TRUNKS = [
    Trunk("Ethernet1/10", "h3", ()),
    Trunk("Ethernet1/2", "h2", (200,)),
    Trunk("Ethernet1/1", "h1", (100, 101, 200)),
]


def tor_policy() -> DevicePolicy:
    """ToR tor1 carries VLANs 100, 101, 200 with the endpoints, and transit VLAN 300."""
    return compile_device(
        snapshot(), "tor1", "tor-acl", ENDPOINTS, vlans=[300, 200, 101, 100], trunks=TRUNKS
    )


# The subnets' gateways: tenant 1 routes VLANs 100 and 101 in its VRF; tenant 2 reuses
# 10.1.0.0/24 on VLAN 200 in its own VRF.
GATEWAYS = [
    Gateway(100, VRF1, "10.1.0.0/24", "10.1.0.1"),
    Gateway(100, VRF1, "2001:db8:1::/64", "2001:db8:1::1"),
    Gateway(101, VRF1, "10.1.1.0/24", "10.1.1.1"),
    Gateway(101, VRF1, "2001:db8:1:1::/64", "2001:db8:1:1::1"),
    Gateway(200, VRF2, "10.1.0.0/24", "10.1.0.1"),
]


def routed_tor_policy() -> DevicePolicy:
    """tor_policy() where the ToR is also the gateway of every local subnet."""
    return compile_device(
        snapshot(), "tor1", "tor-acl", ENDPOINTS, vlans=[300, 200, 101, 100], gateways=GATEWAYS
    )


# Tenant 1's VRF has an approved route leak with a third tenant's VRF (not routed on
# tor1): its 10.9.0.0/24 and 2001:db8:9::/64 come in, next hops resolved in VRF3.
VRF3 = _id(0x23)
LEAK = "00000000-0000-0000-0000-00000000ea01"
LEAKED_ROUTES = [
    Route(VRF1, "2001:db8:9::/64", VRF3, "2001:db8:9::1", LEAK),
    Route(VRF1, "10.9.0.0/24", VRF3, "10.9.0.1", LEAK),
]


def leaked_tor_policy() -> DevicePolicy:
    """routed_tor_policy() with tenant 1's route leak to VRF3."""
    return replace(routed_tor_policy(), routes=tuple(sorted(LEAKED_ROUTES)))
