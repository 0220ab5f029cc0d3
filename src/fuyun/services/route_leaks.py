"""Route leaks between two VRFs: requested by a tenant, in force only once an operator approves.

Tenants never route to each other by default (each VRF routes only its own
networks). A route leak is the one exception: a tenant admin of either side asks
for it (``pending``, routing nothing), an operator approves it (``approved``) or
creates it approved, and either side's admin or an operator revokes it (the row
is deleted). Approval and revocation recompile the ToRs that route either VRF in
the same transaction; the lab's network node and ``verify`` read approved leaks
on level (:mod:`fuyun.services.leak_paths`).

Validation refuses, naming the field: an unknown network (``network_id``,
``peer_network_id``), two networks of one VRF, a ``peer_prefix`` that is not
inside a subnet of the peer network, and any prefix that would overlap an address
range already routed in the VRF it is leaked into (``409``) — two tenants using
the same range can never be joined, because routing between them is ambiguous.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from fuyun.domain.enums import Role
from fuyun.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from fuyun.netsvc.leaks import ambiguities
from fuyun.services.audit import mutation
from fuyun.services.enforcement import recompile
from fuyun.services.leak_paths import APPROVED, peer_exports, subnets_of, vrf_ranges
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Module, Network, Port, RouteLeak, Tenant
from fuyun.store.types import utcnow

PENDING = "pending"
STATES = (PENDING, APPROVED)


@dataclass(frozen=True)
class LeakRequest:
    network_id: uuid.UUID
    peer_network_id: uuid.UUID
    peer_prefix: str | None = None
    description: str = ""
    approve: bool = False  # operators only: create it approved


@dataclass(frozen=True)
class LeakView:
    """A leak with what it routes, as both sides and operators see it."""

    leak: RouteLeak
    network: str
    tenant: str
    module: str
    peer_network: str
    peer_tenant: str
    prefixes: list[str]
    peer_prefixes: list[str]


def _require_side_admin(principal: Principal, *tenants: uuid.UUID) -> None:
    principal.require_write()
    if principal.is_operator:
        return
    if principal.role is not Role.TENANT_ADMIN or principal.tenant_id not in tenants:
        raise Forbidden("only an operator or an admin of either tenant may do this")


def _visible(s: Session, principal: Principal, leak_id: uuid.UUID) -> RouteLeak:
    leak = s.get(RouteLeak, leak_id)
    if leak is None or not (
        principal.sees_everything or principal.tenant_id in (leak.tenant_id, leak.peer_tenant_id)
    ):
        raise NotFound("no such route leak", field="leak_id")
    return leak


def _check(s: Session, leak: RouteLeak, *, exclude: uuid.UUID | None = None) -> None:
    """Refuse a leak whose routes would be ambiguous in either VRF (409, field named)."""
    subnets = subnets_of(s, [leak.network_id, leak.peer_network_id])
    mine = [e.prefix for e in subnets.get(leak.network_id, [])]
    peer_subnets = subnets.get(leak.peer_network_id, [])  # type: ignore[call-overload]
    theirs = [e.prefix for e in peer_exports(leak, peer_subnets)]
    if leak.peer_prefix is not None and not theirs:
        raise InvalidInput(
            f"{leak.peer_prefix} is not inside a subnet of the peer network", field="peer_prefix"
        )
    ranges = vrf_ranges(s, [leak.vrf_id, leak.peer_vrf_id])
    others = list(
        s.scalars(
            select(RouteLeak).where(
                RouteLeak.id != (exclude or uuid.UUID(int=0)),
                or_(
                    RouteLeak.vrf_id.in_([leak.vrf_id, leak.peer_vrf_id]),
                    RouteLeak.peer_vrf_id.in_([leak.vrf_id, leak.peer_vrf_id]),
                ),
            )
        )
    )
    imports: dict[uuid.UUID, list[str]] = {leak.vrf_id: [], leak.peer_vrf_id: []}
    other_subnets = subnets_of(
        s, [o.network_id for o in others] + [o.peer_network_id for o in others if o.peer_network_id]
    )
    for o in others:
        a = [e.prefix for e in other_subnets.get(o.network_id, [])]
        b = [e.prefix for e in peer_exports(o, other_subnets.get(o.peer_network_id, []))]  # type: ignore[call-overload]
        if o.vrf_id in imports:
            imports[o.vrf_id] += b
        if o.peer_vrf_id in imports:
            imports[o.peer_vrf_id] += a
    why = ambiguities(mine, ranges[leak.peer_vrf_id], imports[leak.peer_vrf_id])
    why += ambiguities(theirs, ranges[leak.vrf_id], imports[leak.vrf_id])
    if why:
        raise Conflict(
            "routing between the two VRFs would be ambiguous: " + "; ".join(why[:4]),
            field="peer_prefix" if leak.peer_prefix else "peer_network_id",
        )


def _hosts(s: Session, leak: RouteLeak) -> set[uuid.UUID]:
    """The hosts whose devices route either VRF of ``leak`` (hosts with ports there)."""
    return set(
        s.scalars(
            select(Port.host_id)
            .join(Network, Network.id == Port.network_id)
            .where(
                Network.vrf_id.in_([leak.vrf_id, leak.peer_vrf_id]),
                Port.host_id.is_not(None),
            )
            .distinct()
        )
    )


def _recompile(s: Session, leak: RouteLeak) -> int:
    """Recompile the devices that route either VRF (the hosts and their ToRs)."""
    return recompile(s, _hosts(s, leak)).changed


def request_leak(db: Database, principal: Principal, req: LeakRequest) -> RouteLeak:
    """Record a leak (``pending``; ``approved`` when an operator asks for it so)."""
    principal.require_write()
    if req.approve and not principal.is_operator:
        raise Forbidden("only an operator may create an approved route leak")
    with mutation(db, principal, "route-leak.request", "route-leak") as m:
        s = m.session
        network = s.get(Network, req.network_id)
        if network is None or not principal.may_see_tenant(network.tenant_id):
            raise NotFound("no such network", field="network_id")
        # The peer is another tenant's: found by id (its owner shared it), never listed.
        peer = s.get(Network, req.peer_network_id)
        if peer is None:
            raise NotFound("no such network", field="peer_network_id")
        _require_side_admin(principal, network.tenant_id)
        if peer.vrf_id == network.vrf_id:
            raise InvalidInput(
                "both networks are in one VRF, which already routes between them",
                field="peer_network_id",
            )
        prefix = None
        if req.peer_prefix is not None:
            try:
                prefix = str(ipaddress.ip_network(req.peer_prefix, strict=True))
            except ValueError as exc:
                raise InvalidInput(f"not a prefix: {exc}", field="peer_prefix") from exc
        if len(req.description) > 256:
            raise InvalidInput("description is at most 256 characters", field="description")
        pair = [network.id, peer.id]
        if s.scalar(
            select(RouteLeak.id).where(
                or_(
                    and_(RouteLeak.network_id == pair[0], RouteLeak.peer_network_id == pair[1]),
                    and_(RouteLeak.network_id == pair[1], RouteLeak.peer_network_id == pair[0]),
                )
            )
        ):
            raise Conflict("a route leak between these networks exists", field="peer_network_id")
        leak = RouteLeak(
            tenant_id=network.tenant_id,
            network_id=network.id,
            vrf_id=network.vrf_id,
            peer_tenant_id=peer.tenant_id,
            peer_network_id=peer.id,
            peer_vrf_id=peer.vrf_id,
            peer_prefix=prefix,
            state=APPROVED if req.approve else PENDING,
            requested_by=principal.username,
            description=req.description,
        )
        if req.approve:
            leak.approved_by, leak.approved_at = principal.username, utcnow()
        _check(s, leak)
        s.add(leak)
        s.flush()
        m.object_id, m.tenant_id = str(leak.id), network.tenant_id
        m.detail = {
            "network_id": str(network.id),
            "peer_network_id": str(peer.id),
            "peer_tenant_id": str(peer.tenant_id),
            "peer_prefix": prefix,
            "state": leak.state,
        }
        if req.approve:
            m.detail["devices_changed"] = _recompile(s, leak)
        return leak


def approve_leak(db: Database, principal: Principal, leak_id: uuid.UUID) -> RouteLeak:
    """Put a pending leak in force (operators); checked again against today's ranges."""
    principal.require_operator()
    with mutation(db, principal, "route-leak.approve", "route-leak", object_id=leak_id) as m:
        s = m.session
        leak = _visible(s, principal, leak_id)
        m.tenant_id = leak.tenant_id
        if leak.state == APPROVED:
            raise Conflict("the route leak is already approved", field="leak_id")
        _check(s, leak, exclude=leak.id)
        leak.state, leak.approved_by, leak.approved_at = APPROVED, principal.username, utcnow()
        m.detail = {"devices_changed": _recompile(s, leak)}
        return leak


def revoke_leak(db: Database, principal: Principal, leak_id: uuid.UUID) -> None:
    """Delete the leak (an operator, or an admin of either side): its routes go with it."""
    with mutation(db, principal, "route-leak.revoke", "route-leak", object_id=leak_id) as m:
        s = m.session
        leak = _visible(s, principal, leak_id)
        m.tenant_id = leak.tenant_id
        _require_side_admin(principal, leak.tenant_id, leak.peer_tenant_id)
        was, sides = leak.state, RouteLeak(vrf_id=leak.vrf_id, peer_vrf_id=leak.peer_vrf_id)
        s.delete(leak)
        s.flush()
        m.detail = {"state": was}
        if was == APPROVED:
            m.detail["devices_changed"] = _recompile(s, sides)


def list_leaks(db: Database, principal: Principal, *, state: str | None = None) -> list[LeakView]:
    """Leaks the caller is a side of (operators: all), oldest first."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    with db.read_session() as s:
        stmt = select(RouteLeak).order_by(RouteLeak.created_at, RouteLeak.id)
        if not principal.sees_everything:
            stmt = stmt.where(
                or_(
                    RouteLeak.tenant_id == principal.tenant_id,
                    RouteLeak.peer_tenant_id == principal.tenant_id,
                )
            )
        if state is not None:
            stmt = stmt.where(RouteLeak.state == state)
        return _views(s, list(s.scalars(stmt)))


def get_leak(db: Database, principal: Principal, leak_id: uuid.UUID) -> LeakView:
    with db.read_session() as s:
        return _views(s, [_visible(s, principal, leak_id)])[0]


def view_of(db: Database, leak_id: uuid.UUID) -> LeakView:
    with db.read_session() as s:
        leak = s.get(RouteLeak, leak_id)
        if leak is None:
            raise NotFound("no such route leak", field="leak_id")
        return _views(s, [leak])[0]


def _views(s: Session, leaks: list[RouteLeak]) -> list[LeakView]:
    ids = {x.network_id for x in leaks} | {x.peer_network_id for x in leaks if x.peer_network_id}
    rows = s.execute(
        select(Network.id, Network.name, Module.name)
        .join(Module, Module.id == Network.module_id)
        .where(Network.id.in_(ids))
    ).all()
    names = {i: (n, m) for i, n, m in rows}
    tenants = dict(s.execute(select(Tenant.id, Tenant.name)).all())
    subnets = subnets_of(s, ids)
    out = []
    for x in leaks:
        s.expunge(x)
        peer_subnets = subnets.get(x.peer_network_id, [])  # type: ignore[call-overload]
        out.append(
            LeakView(
                x,
                names.get(x.network_id, ("", ""))[0],
                tenants.get(x.tenant_id, ""),
                names.get(x.network_id, ("", ""))[1],
                names.get(x.peer_network_id, ("", ""))[0],  # type: ignore[arg-type]
                tenants.get(x.peer_tenant_id, ""),
                [e.prefix for e in subnets.get(x.network_id, [])],
                [e.prefix for e in peer_exports(x, peer_subnets)],
            )
        )
    return out


def routing_hosts(s: Session, network_id: uuid.UUID) -> set[uuid.UUID]:
    """Hosts whose devices route a network's approved leaks (either side's VRF).

    A leak of a whole network routes every subnet of it: when a subnet is added, the
    peer VRF's ToRs need a route to the new prefix too.
    """
    leaks = s.scalars(
        select(RouteLeak).where(
            or_(RouteLeak.network_id == network_id, RouteLeak.peer_network_id == network_id),
            RouteLeak.state == APPROVED,
        )
    )
    return {h for leak in leaks for h in _hosts(s, leak)}


def drop_network_leaks(s: Session, network_id: uuid.UUID) -> int:
    """In a network's deletion: its leaks go with it (the database cascades too), and the
    ToRs routing an approved one are recompiled in the same transaction, so no route
    outlives the network. Answers how many leaks went."""
    leaks = list(
        s.scalars(
            select(RouteLeak).where(
                or_(RouteLeak.network_id == network_id, RouteLeak.peer_network_id == network_id)
            )
        )
    )
    approved = [
        RouteLeak(vrf_id=x.vrf_id, peer_vrf_id=x.peer_vrf_id) for x in leaks if x.state == APPROVED
    ]
    for x in leaks:
        s.delete(x)
    s.flush()
    for sides in approved:
        _recompile(s, sides)
    return len(leaks)
