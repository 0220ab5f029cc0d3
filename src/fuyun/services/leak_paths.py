"""Approved route leaks as :class:`~fuyun.netsvc.leaks.LeakPath` values, from the store.

Every place that routes reads leaks through here — the ToR compile
(:mod:`fuyun.services.enforcement`), the network node and ``verify`` — so a
pending leak is invisible to all of them alike. A side's exports are computed
now (the network's current subnets), and an export that has come to overlap a
range of the VRF it is routed into since approval (a subnet added later) is left
out: no route is ever installed that could make routing ambiguous.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fuyun.ipam.addresses import to_address, unpack
from fuyun.netsvc.leaks import Export, LeakPath, overlapping
from fuyun.policy.ir import Route
from fuyun.store.models import Network, RouteLeak, Subnet, Tenant

APPROVED = "approved"


def subnets_of(s: Session, network_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Export]]:
    """Network -> its subnets as exports (prefix, gateway), IPv4 first."""
    out: dict[uuid.UUID, list[Export]] = defaultdict(list)
    ids = list(set(network_ids))
    if not ids:
        return out
    for network_id, cidr, gateway, family in s.execute(
        select(Subnet.network_id, Subnet.cidr, Subnet.gateway, Subnet.family)
        .where(Subnet.network_id.in_(ids))
        .order_by(Subnet.family, Subnet.first)
    ):
        gw = None if gateway is None else str(to_address(unpack(gateway), family))
        out[network_id].append(Export(cidr, gw))
    return out


def vrf_ranges(s: Session, vrf_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    out: dict[uuid.UUID, list[str]] = defaultdict(list)
    ids = list(set(vrf_ids))
    if ids:
        for vrf_id, cidr in s.execute(
            select(Subnet.vrf_id, Subnet.cidr).where(Subnet.vrf_id.in_(ids))
        ):
            out[vrf_id].append(cidr)
    return out


def peer_exports(leak: RouteLeak, subnets: list[Export]) -> list[Export]:
    """The peer side's exports: its network's subnets, or the prefix narrowed to."""
    if leak.peer_prefix is None:
        return list(subnets)
    prefix = ipaddress.ip_network(leak.peer_prefix)
    for sub in subnets:
        net = ipaddress.ip_network(sub.prefix)
        if net.version == prefix.version and prefix.subnet_of(net):  # type: ignore[arg-type]
            return [Export(str(prefix), sub.nexthop)]
    return []


def approved_paths(
    s: Session, *, vrfs: set[uuid.UUID] | None = None, modules: set[uuid.UUID] | None = None
) -> list[LeakPath]:
    """Approved leaks (touching ``vrfs`` / networks of ``modules``, when given)."""
    stmt = select(RouteLeak).where(RouteLeak.state == APPROVED).order_by(RouteLeak.id)
    if vrfs is not None:
        stmt = stmt.where(
            or_(RouteLeak.vrf_id.in_(list(vrfs)), RouteLeak.peer_vrf_id.in_(list(vrfs)))
        )
    leaks = list(s.scalars(stmt))
    if not leaks:
        return []
    network_ids = {x.network_id for x in leaks} | {
        x.peer_network_id for x in leaks if x.peer_network_id
    }
    networks = {n.id: n for n in s.scalars(select(Network).where(Network.id.in_(network_ids)))}
    if modules is not None:
        leaks = [
            x
            for x in leaks
            if networks[x.network_id].module_id in modules
            or (x.peer_network_id and networks[x.peer_network_id].module_id in modules)
        ]
    tenants = dict(s.execute(select(Tenant.id, Tenant.name)).all())
    subnets = subnets_of(s, network_ids)
    ranges = vrf_ranges(s, {x.vrf_id for x in leaks} | {x.peer_vrf_id for x in leaks})
    out = []
    for x in leaks:
        mine = subnets.get(x.network_id, [])
        theirs = peer_exports(x, subnets.get(x.peer_network_id, []) if x.peer_network_id else [])
        # Never route into a VRF what it already holds (see the module docstring).
        mine = [e for e in mine if not overlapping([e.prefix], ranges[x.peer_vrf_id])]
        theirs = [e for e in theirs if not overlapping([e.prefix], ranges[x.vrf_id])]
        a, b = networks[x.network_id], networks.get(x.peer_network_id)  # type: ignore[arg-type]
        peer = f"{b.name}/{tenants.get(b.tenant_id, '')}" if b else str(x.peer_prefix)
        out.append(
            LeakPath(
                str(x.id),
                str(x.vrf_id),
                str(x.peer_vrf_id),
                tuple(mine),
                tuple(theirs),
                f"leak {str(x.id)[:8]} ({a.name}/{tenants.get(a.tenant_id, '')} <-> {peer})",
            )
        )
    return out


def tor_routes(s: Session, vrf_ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Route]]:
    """VRF -> the inter-VRF routes approved leaks put into it (a ToR routing that VRF)."""
    out: dict[uuid.UUID, list[Route]] = defaultdict(list)
    if not vrf_ids:
        return out
    for path in approved_paths(s, vrfs=vrf_ids):
        for into, via in ((path.vrf_id, path.peer_vrf_id), (path.peer_vrf_id, path.vrf_id)):
            into_id, via_id = uuid.UUID(into), uuid.UUID(via)
            for e in path.imported_into(into):
                if e.nexthop is not None:  # a subnet without gateway is not routed anywhere
                    out[into_id].append(Route(into_id, e.prefix, via_id, e.nexthop, path.leak_id))
    return out
