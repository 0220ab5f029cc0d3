"""verify's reachability from compiled state equals brute force over the intent.

Hypothesis draws tenants, networks, groups, memberships, tenant rules and operator
global rules; the intent is compiled to per-host IR; verify analyses the IR by
equivalence classes. An independent, naive evaluator walks every endpoint pair
and every probe directly over the intent. They must agree exactly. A corrupted
compiled rule must show up as a difference.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fuyun.netsvc.leaks import Export, LeakPath
from fuyun.policy.compile import GlobalRule, GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import Action, Direction, Endpoint
from fuyun.verify.evaluate import Service, probes
from fuyun.verify.reachability import analyse, endpoint_reach, reaches

CIDRS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.0.0/24", "192.0.2.0/24", "0.0.0.0/0"]
PORTS = [(22, 22), (80, 443), (5432, 5432), (1, 1024), None]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Endpoint], PolicySnapshot, dict[uuid.UUID, str]]:
    n_tenants = draw(st.integers(1, 3))
    endpoints: list[Endpoint] = []
    rules: dict[uuid.UUID, list[GroupRule]] = {}
    hosts: dict[uuid.UUID, str] = {}
    for t in range(n_tenants):
        tenant, vrf = uuid.UUID(int=t + 1), uuid.UUID(int=100 + t)
        groups = [uuid.UUID(int=1000 + t * 10 + g) for g in range(draw(st.integers(1, 3)))]
        segments = [uuid.UUID(int=5000 + t * 10 + s) for s in range(draw(st.integers(1, 2)))]
        for g in groups:
            rules[g] = []
            for _ in range(draw(st.integers(0, 3))):
                ports = draw(st.sampled_from(PORTS))
                remote = draw(st.sampled_from(["any", "cidr", "group"]))
                rules[g].append(
                    GroupRule(
                        id=uuid.uuid4(),
                        group_id=g,
                        direction=draw(st.sampled_from(list(Direction))),
                        family=4,
                        protocol=draw(
                            st.sampled_from(
                                ["tcp", "udp", "any"] if ports else ["tcp", "icmp", "any"]
                            )
                        ),
                        port_min=ports[0] if ports else None,
                        port_max=ports[1] if ports else None,
                        remote_cidr=draw(st.sampled_from(CIDRS)) if remote == "cidr" else None,
                        remote_group_id=draw(st.sampled_from(groups))
                        if remote == "group"
                        else None,
                    )
                )
        for i in range(draw(st.integers(1, 4))):
            seg = draw(st.sampled_from(segments))
            # Overlapping ranges across tenants: every tenant uses 10.1.0.0/24.
            ip = f"10.1.0.{10 + i + 20 * segments.index(seg)}"
            members = frozenset(draw(st.sets(st.sampled_from(groups), max_size=len(groups))))
            port = uuid.uuid4()
            endpoints.append(
                Endpoint(
                    port,
                    tenant,
                    vrf,
                    uuid.UUID(int=9),
                    seg,
                    100 + t,
                    "fa:16:3e:00:00:01",
                    (ip,),
                    members,
                    host=f"h{len(endpoints) % 3}",
                )
            )
            hosts[port] = f"h{len(endpoints) % 3}"
    global_rules = [
        GlobalRule(
            uuid.uuid4(),
            draw(st.sampled_from(list(Action))),
            draw(st.sampled_from(list(Direction))),
            4,
            draw(st.sampled_from(["tcp", "icmp"])),
            22 if i == 0 else None,
            22 if i == 0 else None,
            draw(st.sampled_from(CIDRS)),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    members: dict[uuid.UUID, dict[int, set[str]]] = {}
    for e in endpoints:
        for g in e.groups:
            members.setdefault(g, {4: set(), 6: set()})[4].update(e.ips)
    for g in rules:
        members.setdefault(g, {4: set(), 6: set()})
    return endpoints, PolicySnapshot(rules, members, global_rules), hosts


def _devices(endpoints: list[Endpoint], snap: PolicySnapshot) -> list:  # type: ignore[type-arg]
    by_host: dict[str, list[Endpoint]] = {}
    for e in endpoints:
        by_host.setdefault(e.host or "", []).append(e)
    return [compile_device(snap, h, "vswitch", eps) for h, eps in sorted(by_host.items())]


# -- the naive evaluator: intent only, no IR, no classes ---------------------------------


def _hit(protocol: str, pmin: int | None, pmax: int | None, remote_ok: bool, svc: Service) -> bool:
    if protocol not in ("any", svc.protocol):
        return False
    if pmin is not None and (svc.port is None or not pmin <= svc.port <= (pmax or pmin)):
        return False
    return remote_ok


def _in(ip: str, cidr: str | None) -> bool:
    return cidr is None or ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


def _side(
    e: Endpoint,
    other: Endpoint,
    direction: Direction,
    snap: PolicySnapshot,
    svc: Service,
    members: dict[uuid.UUID, set[str]],
) -> bool:
    remote = other.ips[0]
    for g in snap.global_rules:
        if (
            g.direction == direction
            and g.action == Action.DENY
            and _hit(g.protocol, g.port_min, g.port_max, _in(remote, g.remote_cidr), svc)
        ):
            return False
    for g in snap.global_rules:
        if (
            g.direction == direction
            and g.action == Action.ALLOW
            and _hit(g.protocol, g.port_min, g.port_max, _in(remote, g.remote_cidr), svc)
        ):
            return True
    for group in e.groups:
        for r in snap.rules.get(group, []):
            if r.direction != direction:
                continue
            if r.remote_group_id is not None:
                ok = remote in members.get(r.remote_group_id, set())
            else:
                ok = _in(remote, r.remote_cidr)
            if _hit(r.protocol, r.port_min, r.port_max, ok, svc):
                return True
    return False


def brute_force(
    endpoints: list[Endpoint], snap: PolicySnapshot, services: dict[uuid.UUID, list[Service]]
) -> set[tuple[uuid.UUID, uuid.UUID, Service]]:
    members = {g: set(m.get(4, set())) for g, m in snap.members.items()}
    out = set()
    for a in endpoints:
        for b in endpoints:
            if a.port_id == b.port_id or a.vrf_id != b.vrf_id:
                continue
            for svc in services[a.vrf_id]:
                if _side(a, b, Direction.EGRESS, snap, svc, members) and _side(
                    b, a, Direction.INGRESS, snap, svc, members
                ):
                    out.add((a.port_id, b.port_id, svc))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(worlds())
def test_verify_equals_brute_force(world: tuple[list[Endpoint], PolicySnapshot, dict]) -> None:  # type: ignore[type-arg]
    endpoints, snap, _ = world
    devices = _devices(endpoints, snap)
    result = analyse(devices)
    # verify probes each VRF with the distinctions its own rules make; so does this.
    services = {
        vrf: probes(
            [
                r
                for d in devices
                for p in d.ports
                if p.endpoint.vrf_id == vrf
                for r in (*p.ingress, *p.egress)
            ]
        )
        for vrf in {e.vrf_id for e in endpoints}
    }
    assert endpoint_reach(result) == brute_force(endpoints, snap, services)
    assert result.endpoints() == len(endpoints)
    assert all(r.src.sample.tenant_id == r.dst.sample.tenant_id for r in result.reach.values())


def test_a_corrupted_compiled_rule_is_found() -> None:
    tenant, vrf, seg = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
    web, db = uuid.UUID(int=10), uuid.UUID(int=11)
    snap = PolicySnapshot(
        rules={
            web: [GroupRule(uuid.UUID(int=20), web, Direction.EGRESS, 4)],
            db: [
                GroupRule(
                    uuid.UUID(int=21),
                    db,
                    Direction.INGRESS,
                    4,
                    "tcp",
                    5432,
                    5432,
                    remote_group_id=web,
                )
            ],
        },
        members={web: {4: {"10.1.0.10"}, 6: set()}, db: {4: {"10.1.0.20"}, 6: set()}},
    )
    eps = [
        Endpoint(
            uuid.UUID(int=100),
            tenant,
            vrf,
            seg,
            seg,
            100,
            "m",
            ("10.1.0.10",),
            frozenset({web}),
            host="h1",
        ),
        Endpoint(
            uuid.UUID(int=101),
            tenant,
            vrf,
            seg,
            seg,
            100,
            "m",
            ("10.1.0.20",),
            frozenset({db}),
            host="h2",
        ),
        Endpoint(
            uuid.UUID(int=102),
            tenant,
            vrf,
            seg,
            seg,
            100,
            "m",
            ("10.1.0.30",),
            frozenset({web}),
            host="h1",
        ),
    ]
    devices = _devices(eps, snap)
    good = endpoint_reach(analyse(devices))
    assert (eps[0].port_id, eps[1].port_id, Service("tcp", 5432)) in good
    assert not any(d == eps[0].port_id for _, d, _ in good), "nothing may reach web"

    # Corrupt db's compiled ingress rule on h2: its remote set becomes "anything".
    h2 = next(d for d in devices if d.device == "h2")
    port = h2.ports[0]
    bad_rule = replace(
        port.ingress[0],
        match=replace(
            port.ingress[0].match, remote_set=None, protocol="any", port_min=None, port_max=None
        ),
    )
    corrupted = [
        d if d.device != "h2" else replace(h2, ports=(replace(port, ingress=(bad_rule,)),))
        for d in devices
    ]
    leaks = endpoint_reach(analyse(corrupted)) - good
    assert leaks, "the corrupted rule must show up as reachability the intent does not allow"
    assert {(s, d) for s, d, _ in leaks} >= {(eps[0].port_id, eps[1].port_id)}
    assert any(svc == Service("tcp", 22) or svc.protocol == "icmp" for _, _, svc in leaks)


# -- route leaks: the only path between two VRFs -----------------------------------------

LEAK_PREFIXES = ["10.1.0.0/24", "10.1.0.0/28", "10.1.0.16/28", "10.1.0.28/30", "10.9.0.0/24"]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(worlds(), st.sampled_from(LEAK_PREFIXES), st.sampled_from(LEAK_PREFIXES))
def test_verify_with_a_route_leak_equals_brute_force(
    world: tuple[list[Endpoint], PolicySnapshot, dict],  # type: ignore[type-arg]
    exported: str,
    peer_exported: str,
) -> None:
    """Two VRFs joined by a leak: a pair reaches across exactly when the leak routes both
    addresses (each side's export) and both sides' rules allow it; any service."""
    endpoints, snap, _ = world
    vrfs = sorted({e.vrf_id for e in endpoints})
    assume(len(vrfs) >= 2)
    leak = LeakPath(
        "leak-1", str(vrfs[0]), str(vrfs[1]), (Export(exported),), (Export(peer_exported),), "L1"
    )
    devices = _devices(endpoints, snap)
    result = analyse(devices, [leak])
    services = probes([r for d in devices for p in d.ports for r in (*p.ingress, *p.egress)])
    members = {g: set(m.get(4, set())) for g, m in snap.members.items()}
    routed = {vrfs[0]: exported, vrfs[1]: peer_exported}

    def path(a: Endpoint, b: Endpoint) -> bool:
        if a.vrf_id == b.vrf_id:
            return True
        return {a.vrf_id, b.vrf_id} == set(vrfs[:2]) and all(
            _in(e.ips[0], routed[e.vrf_id]) for e in (a, b)
        )

    for a in endpoints:
        for b in endpoints:
            if a.port_id == b.port_id:
                continue
            for svc in services:
                want = (
                    path(a, b)
                    and _side(a, b, Direction.EGRESS, snap, svc, members)
                    and _side(b, a, Direction.INGRESS, snap, svc, members)
                )
                assert reaches(result, a.port_id, b.port_id, svc) == want, (a, b, svc)
    for r in result.reach.values():
        if r.src.sample.vrf_id != r.dst.sample.vrf_id:
            assert r.leak == "leak-1" and "L1" in r.path


def test_without_the_leak_two_vrfs_are_isolated_and_with_it_the_path_names_it() -> None:
    t1, t2, v1, v2 = (uuid.UUID(int=n) for n in (1, 2, 3, 4))
    group = {t1: uuid.UUID(int=10), t2: uuid.UUID(int=11)}
    snap = PolicySnapshot(
        rules={
            group[t1]: [GroupRule(uuid.UUID(int=20), group[t1], Direction.EGRESS, 4)],
            group[t2]: [
                GroupRule(
                    uuid.UUID(int=21),
                    group[t2],
                    Direction.INGRESS,
                    4,
                    "tcp",
                    5432,
                    5432,
                    remote_cidr="10.61.0.0/24",
                )
            ],
        },
        members={g: {4: set(), 6: set()} for g in group.values()},
    )
    seg, net = uuid.UUID(int=5), uuid.UUID(int=9)
    mac = "fa:16:3e:00:00:01"
    web = Endpoint(uuid.UUID(int=100), t1, v1, net, seg, 100, mac, ("10.61.0.10",),
                   frozenset({group[t1]}), host="h1")  # fmt: skip
    db = Endpoint(uuid.UUID(int=101), t2, v2, net, seg, 200, mac, ("10.62.0.10",),
                  frozenset({group[t2]}), host="h2")  # fmt: skip
    devices = _devices([web, db], snap)
    assert analyse(devices).reach == {}
    name = "leak x1 (web/acme <-> db/bolt)"
    leak = LeakPath("x1", str(v1), str(v2), (Export("10.61.0.0/24", "10.61.0.1"),),
                    (Export("10.62.0.0/24", "10.62.0.1"),), name)  # fmt: skip
    result = analyse(devices, [leak])
    (reach,) = result.reach.values()
    assert (reach.src.sample, reach.dst.sample) == (web, db)
    assert [str(s) for s in reach.services] == ["tcp/5432"]
    assert name in reach.path and reach.leak == "x1"
    # A leak of other prefixes routes nothing between these two.
    other = LeakPath("x2", str(v1), str(v2), (Export("10.61.0.0/24"),), (Export("10.63.0.0/24"),))
    assert analyse(devices, [other]).reach == {}
