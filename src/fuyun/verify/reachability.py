"""Who can reach whom, computed from compiled device policies alone.

Endpoints are grouped into equivalence classes that no compiled rule can tell
apart: same VRF, same ingress and egress rules, membership in the same address
sets, inside the same CIDRs. Only classes are compared, never all VM pairs — a
fleet of 10,000 VMs in a few hundred classes is checked in seconds.

A flow from A to B needs a path (the same VRF: the same VLAN, or routed inside the
tenant's VRF; different VRFs only through an approved route leak that routes A's
address into B's VRF and B's into A's — both, or replies have no way back) and both
sides' compiled rules: A's egress and B's ingress.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from fuyun.netsvc.leaks import LeakPath
from fuyun.policy.ir import Action, AddressSet, DevicePolicy, Endpoint, PortPolicy, Rule
from fuyun.verify.evaluate import (
    Service,
    ServiceIndex,
    _in_cidr,
    decisions,
    family_of,
    for_remote,
    probes,
)


@dataclass(frozen=True)
class EndpointClass:
    key: tuple[object, ...]
    members: tuple[Endpoint, ...]
    policy: PortPolicy
    sets: dict[str, AddressSet]
    leaks: frozenset[str] = frozenset()  # route leaks that export its addresses

    @property
    def sample(self) -> Endpoint:
        return self.members[0]

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.sample.tenant_id


@dataclass(frozen=True)
class Reach:
    src: EndpointClass
    dst: EndpointClass
    services: tuple[Service, ...]
    path: str
    allowed_by: tuple[str, ...]  # "egress <origin> / ingress <origin>" per service
    leak: str = ""  # the route leak the path goes through, if it crosses VRFs

    def describe(self) -> str:
        s, d = self.src.sample, self.dst.sample
        return (
            f"{s.ips[0] if s.ips else s.port_id} -> {d.ips[0] if d.ips else d.port_id}: "
            f"{', '.join(map(str, self.services))} via {self.path}"
        )


@dataclass
class Reachability:
    classes: list[EndpointClass] = field(default_factory=list)
    reach: dict[tuple[int, int], Reach] = field(default_factory=dict)
    pairs_checked: int = 0
    leaks: Sequence[LeakPath] = ()

    def endpoints(self) -> int:
        return sum(len(c.members) for c in self.classes)


def _exporting(e: Endpoint, leaks: dict[str, list[LeakPath]]) -> frozenset[str]:
    """The leaks (of its VRF, from ``leaks`` by VRF) that route one of its addresses out."""
    vrf = str(e.vrf_id)
    return frozenset(
        x.leak_id
        for x in leaks.get(vrf, ())
        if any(_in_cidr(ip, p.prefix) for p in x.exported_by(vrf) for ip in e.ips)
    )


def _classes(devices: list[DevicePolicy], leaks: Sequence[LeakPath] = ()) -> list[EndpointClass]:
    # An endpoint is a remote for other devices' rules: classify it by the sets of
    # every device, so members of one class are alike wherever they are looked up.
    everywhere: dict[str, set[str]] = defaultdict(set)
    for d in devices:
        for st in d.sets:
            everywhere[st.name] |= st.addresses
    # Flows exist only inside a VRF, so an address's membership matters only for the sets
    # its own VRF's rules use — tenants reusing 10.0.0.0/24 must not share a class key.
    # The same holds for CIDRs: only those in its own VRF's rules can tell an address
    # apart, which keeps classification linear in tenants instead of quadratic.
    used_in_vrf: dict[uuid.UUID, set[str]] = defaultdict(set)
    cidrs_in_vrf: dict[uuid.UUID, set[str]] = defaultdict(set)
    for d in devices:
        for p in d.ports:
            vrf = p.endpoint.vrf_id
            for r in (*p.ingress, *p.egress):
                if r.match.remote_set:
                    used_in_vrf[vrf].add(r.match.remote_set)
                elif r.match.remote_cidr:
                    cidrs_in_vrf[vrf].add(r.match.remote_cidr)
    # A route leak makes an address a remote for the peer VRF's rules too.
    for x in leaks:
        a, b = uuid.UUID(x.vrf_id), uuid.UUID(x.peer_vrf_id)
        sets_a, sets_b = set(used_in_vrf[a]), set(used_in_vrf[b])
        cidrs_a, cidrs_b = set(cidrs_in_vrf[a]), set(cidrs_in_vrf[b])
        used_in_vrf[a] |= sets_b
        used_in_vrf[b] |= sets_a
        cidrs_in_vrf[a] |= cidrs_b
        cidrs_in_vrf[b] |= cidrs_a
    ordered_cidrs = {vrf: sorted(cidrs) for vrf, cidrs in cidrs_in_vrf.items()}
    leaks_of: dict[str, list[LeakPath]] = defaultdict(list)
    for x in leaks:
        leaks_of[x.vrf_id].append(x)
        leaks_of[x.peer_vrf_id].append(x)
    groups: dict[tuple[object, ...], list[tuple[Endpoint, PortPolicy, dict[str, AddressSet]]]]
    groups = defaultdict(list)
    for d in devices:
        sets = d.set_by_name()
        # What this device holds in each set, hashed once per device: a port whose rules
        # refer to a set is classed by that set's content here, so a device whose copy
        # differs (a corruption) stands apart without hashing contents per endpoint.
        content = {name: hash(st.addresses) for name, st in sets.items()}
        for p in d.ports:
            e = p.endpoint
            relevant = used_in_vrf[e.vrf_id]
            # Only the few sets this VRF uses: tenants reuse addresses, so an index
            # from address to every set holding it grows with the number of tenants.
            in_sets = frozenset(
                n for n in relevant if any(ip in everywhere.get(n, ()) for ip in e.ips)
            )
            in_cidrs = tuple(
                c for c in ordered_cidrs.get(e.vrf_id, ()) if any(_in_cidr(ip, c) for ip in e.ips)
            )
            families = tuple(sorted({4 if ":" not in ip else 6 for ip in e.ips}))
            rules = (
                tuple((r.action, r.match) for r in p.ingress),
                tuple((r.action, r.match) for r in p.egress),
            )
            used = {r.match.remote_set for r in (*p.ingress, *p.egress) if r.match.remote_set}
            key = (
                e.vrf_id,
                families,
                rules,
                in_sets,
                in_cidrs,
                tuple(sorted((n, content.get(n)) for n in used)),
                _exporting(e, leaks_of) if leaks_of else frozenset(),
            )
            groups[key].append((e, p, sets))
    out = []
    for key, items in groups.items():
        members = tuple(i[0] for i in items)
        out.append(EndpointClass(key, members, items[0][1], items[0][2], key[-1]))  # type: ignore[arg-type]
    return out


def _flow(
    src: EndpointClass, dst: EndpointClass, index: ServiceIndex
) -> tuple[list[Service], list[str]]:
    """The services src may open to dst: src's egress and dst's ingress both allow them.

    Each side's rules are filtered on the remote address once; then every probe
    service is decided in one pass over what is left (:func:`decisions`).
    """
    s_ep, d_ep = src.sample, dst.sample
    ingress = {
        ip: decisions(for_remote(dst.policy.ingress, ip, dst.sets), index) for ip in s_ep.ips
    }
    verdict: dict[int, tuple[Rule, Rule]] = {}
    for dst_ip in d_ep.ips:
        out = decisions(for_remote(src.policy.egress, dst_ip, src.sets), index)
        family = family_of(dst_ip)
        for i, rule in enumerate(out):
            if rule is None or rule.action is Action.DENY or i in verdict:
                continue
            for src_ip in s_ep.ips:
                inn = ingress[src_ip][i] if family_of(src_ip) == family else None
                if inn is not None and inn.action is Action.ALLOW:
                    verdict[i] = (rule, inn)
                    break
    allowed, blame = [], []
    for i in sorted(verdict):
        svc, (out_rule, in_rule) = index.services[i], verdict[i]
        allowed.append(svc)
        blame.append(f"{svc}: egress {out_rule.origin} / ingress {in_rule.origin}")
    return allowed, blame


def _path(src: Endpoint, dst: Endpoint) -> str | None:
    if src.vrf_id != dst.vrf_id:
        return None
    if src.segment_id == dst.segment_id:
        return f"VLAN {src.vlan}"
    return f"VLAN {src.vlan} -> routed in VRF -> VLAN {dst.vlan}"


def _leak_path(src: EndpointClass, dst: EndpointClass, leak: LeakPath) -> str | None:
    """The path through ``leak`` when it routes both classes' addresses across."""
    if leak.leak_id not in src.leaks or leak.leak_id not in dst.leaks:
        return None
    if {str(src.sample.vrf_id), str(dst.sample.vrf_id)} != {leak.vrf_id, leak.peer_vrf_id}:
        return None
    return f"VLAN {src.sample.vlan} -> {leak.name or leak.leak_id} -> VLAN {dst.sample.vlan}"


def analyse(devices: list[DevicePolicy], leaks: Sequence[LeakPath] = ()) -> Reachability:
    """Every class pair that can reach each other, with services, path and the rules;
    pairs in two VRFs only through approved route ``leaks``."""
    result = Reachability(classes=_classes(devices, leaks), leaks=leaks)
    by_vrf: dict[uuid.UUID, list[int]] = defaultdict(list)
    for i, c in enumerate(result.classes):
        by_vrf[c.sample.vrf_id].append(i)
    for members in by_vrf.values():
        # Only the rules of this VRF's classes can tell its flows apart: probing every
        # tenant's port boundaries in every VRF made the work grow with tenants squared.
        rules: list[Rule] = [
            r
            for i in members
            for r in (*result.classes[i].policy.ingress, *result.classes[i].policy.egress)
        ]
        index = ServiceIndex(probes(rules))
        for i in members:
            for j in members:
                src, dst = result.classes[i], result.classes[j]
                result.pairs_checked += 1
                path = _path(src.sample, dst.sample)
                if path is None:
                    continue
                allowed, blame = _flow(src, dst, index)
                if allowed:
                    result.reach[(i, j)] = Reach(src, dst, tuple(allowed), path, tuple(blame))
    # Pairs in different VRFs have no path but a route leak's; all count as checked.
    n = len(result.classes)
    same = sum(len(m) ** 2 for m in by_vrf.values())
    result.pairs_checked += n * n - same
    for leak in leaks:
        _through(result, leak, by_vrf)
    return result


def _through(result: Reachability, leak: LeakPath, by_vrf: dict[uuid.UUID, list[int]]) -> None:
    """Reach between the classes whose addresses ``leak`` routes, both directions."""
    sides = [
        [i for i in by_vrf.get(uuid.UUID(v), []) if leak.leak_id in result.classes[i].leaks]
        for v in (leak.vrf_id, leak.peer_vrf_id)
    ]
    if not sides[0] or not sides[1]:
        return
    rules = [
        r
        for i in (*sides[0], *sides[1])
        for r in (*result.classes[i].policy.ingress, *result.classes[i].policy.egress)
    ]
    index = ServiceIndex(probes(rules))
    for a, b in ((sides[0], sides[1]), (sides[1], sides[0])):
        for i in a:
            for j in b:
                src, dst = result.classes[i], result.classes[j]
                path = _leak_path(src, dst, leak)
                if path is None:
                    continue
                allowed, blame = _flow(src, dst, index)
                if allowed:
                    result.reach[(i, j)] = Reach(
                        src, dst, tuple(allowed), path, tuple(blame), leak.leak_id
                    )


def endpoint_reach(result: Reachability) -> set[tuple[uuid.UUID, uuid.UUID, Service]]:
    """Expand class results to (src port, dst port, service) triples (for tests)."""
    out = set()
    for reach in result.reach.values():
        for s in reach.src.members:
            for d in reach.dst.members:
                if s.port_id == d.port_id:
                    continue
                for svc in reach.services:
                    out.add((s.port_id, d.port_id, svc))
    return out


def reaches(
    result: Reachability, src_port: uuid.UUID, dst_port: uuid.UUID, service: Service
) -> bool:
    """Whether compiled state lets ``src_port`` open ``service`` on ``dst_port`` — the
    question a live probe asks, answered for any service, not just the probe set."""
    classes = {m.port_id: c for c in result.classes for m in c.members}
    src, dst = classes.get(src_port), classes.get(dst_port)
    if src is None or dst is None:
        return False
    if _path(src.sample, dst.sample) is None and not any(
        _leak_path(src, dst, x) for x in result.leaks
    ):
        return False
    return bool(_flow(src, dst, ServiceIndex([service]))[0])
