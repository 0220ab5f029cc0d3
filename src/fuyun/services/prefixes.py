"""The operators' address plan: site aggregates and module pools (global, routable)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from fuyun.domain.errors import Conflict, InvalidInput, NotFound
from fuyun.ipam.addresses import pack, parse_network, span_of
from fuyun.services import address_plan as plan
from fuyun.services.audit import mutation
from fuyun.services.inventory import resolve_ref
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Module, Prefix, Site, Vrf


def list_prefixes(db: Database, principal: Principal, *, kind: str | None = None) -> list[Prefix]:
    """Operators see the whole plan; a tenant sees the pools of its own VRFs."""
    with db.read_session() as s:
        stmt = select(Prefix).order_by(Prefix.family, Prefix.first, Prefix.prefix_len)
        if not principal.sees_everything:
            own = select(Vrf.id).where(Vrf.tenant_id == principal.tenant_id)
            stmt = stmt.where(Prefix.vrf_id.in_(own))
        if kind:
            stmt = stmt.where(Prefix.kind == kind)
        return list(s.scalars(stmt))


def create_prefix(
    db: Database,
    principal: Principal,
    *,
    cidr: str,
    kind: str,
    site: str | None,
    module: str | None,
    parent_id: uuid.UUID | None,
    description: str,
) -> Prefix:
    """Add an aggregate or a pool to the global plan; a pool must sit inside its parent."""
    principal.require_operator()
    with mutation(db, principal, "prefix.create", "prefix") as m:
        s = m.session
        m.tenant_id = None
        net = parse_network(cidr)
        site_id = resolve_ref(s, Site, site, "site") if site else None
        module_id = resolve_ref(s, Module, module, "module") if module else None
        if module_id is not None and site_id is None:
            mod = s.get(Module, module_id)
            site_id = mod.site_id if mod else None
        parent = None
        if parent_id is not None:
            parent = s.get(Prefix, parent_id)
            if parent is None or parent.vrf_id is not None:
                raise InvalidInput("no such global prefix", field="parent_id")
            if parent.family != net.version or not (
                parent.first <= pack(span_of(net).first) and pack(span_of(net).last) <= parent.last
            ):
                raise InvalidInput(f"{net} is not inside {parent.cidr}", field="cidr")
        span = span_of(net)
        siblings = select(Prefix).where(
            Prefix.vrf_id.is_(None),
            Prefix.family == net.version,
            Prefix.first <= pack(span.last),
            Prefix.last >= pack(span.first),
        )
        siblings = (
            siblings.where(Prefix.parent_id == parent.id)
            if parent is not None
            else siblings.where(Prefix.parent_id.is_(None))
        )
        clash = s.scalar(siblings.limit(1))
        if clash is not None:
            raise Conflict(f"{net} overlaps {clash.cidr}", field="cidr", code="overlap")
        row = plan.prefix_row(
            net,
            kind=kind,
            parent_id=parent.id if parent else None,
            site_id=site_id,
            module_id=module_id,
            description=description,
        )
        s.add(row)
        s.flush()
        m.object_id = str(row.id)
        m.detail = {"cidr": str(net), "kind": kind}
        return row


def delete_prefix(db: Database, principal: Principal, prefix_id: uuid.UUID) -> None:
    principal.require_operator()
    with mutation(db, principal, "prefix.delete", "prefix", object_id=prefix_id) as m:
        m.tenant_id = None
        row = m.session.get(Prefix, prefix_id)
        if row is None or row.vrf_id is not None or row.kind == "carved":
            raise NotFound("no such prefix", field="id")
        child = m.session.scalar(select(Prefix.cidr).where(Prefix.parent_id == row.id).limit(1))
        if child is not None:
            raise Conflict(f"{row.cidr} still holds {child}", field="id", code="prefix_in_use")
        m.detail = {"cidr": row.cidr}
        m.session.delete(row)
