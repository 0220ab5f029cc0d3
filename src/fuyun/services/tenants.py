"""Tenants (partners) and their quotas."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from fuyun.domain.errors import Conflict, InvalidInput, NotFound
from fuyun.domain.vm_states import VmState
from fuyun.services import quotas
from fuyun.services.audit import mutation
from fuyun.services.pagination import Page, paginate
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Network, Quota, Tenant, Vm

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class QuotaView:
    tenant_id: uuid.UUID
    usage: list[quotas.Usage]


def create_tenant(
    db: Database,
    principal: Principal,
    *,
    name: str,
    display_name: str = "",
    description: str = "",
    limits: dict[str, int] | None = None,
) -> Tenant:
    principal.require_operator()
    with mutation(db, principal, "tenant.create", "tenant") as m:
        if not TENANT_NAME.match(name):
            raise InvalidInput("name must be 1-63 lowercase letters, digits or '-'", field="name")
        if m.session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
            raise Conflict(f"tenant '{name}' exists", field="name")
        tenant = Tenant(name=name, display_name=display_name or name, description=description)
        m.session.add(tenant)
        m.session.flush()
        values = {**quotas.DEFAULT_LIMITS, **(limits or {})}
        for k, v in values.items():
            if k not in quotas.RESOURCES:
                raise InvalidInput(f"unknown quota resource '{k}'", field=k)
            if v < 0:
                raise InvalidInput(f"{k} must not be negative", field=k)
        m.session.add(Quota(tenant_id=tenant.id, **{f"max_{k}": v for k, v in values.items()}))
        m.object_id, m.tenant_id = str(tenant.id), tenant.id
        m.detail = {"name": name, "quotas": values}
        return tenant


def _visible(principal: Principal, tenant: Tenant | None) -> Tenant:
    if tenant is None or not principal.may_see_tenant(tenant.id):
        raise NotFound("no such tenant", field="tenant_id")
    return tenant


def get_tenant(db: Database, principal: Principal, tenant_id: uuid.UUID) -> Tenant:
    with db.read_session() as session:
        return _visible(principal, session.get(Tenant, tenant_id))


def list_tenants(
    db: Database,
    principal: Principal,
    *,
    name: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Tenant]:
    stmt = principal.scope(select(Tenant), Tenant.id)
    if name:
        stmt = stmt.where(Tenant.name == name)
    with db.read_session() as session:
        return paginate(
            session, stmt, sort=Tenant.name, id_column=Tenant.id, limit=limit, cursor=cursor
        )


def update_tenant(
    db: Database,
    principal: Principal,
    tenant_id: uuid.UUID,
    *,
    display_name: str | None = None,
    description: str | None = None,
) -> Tenant:
    with mutation(
        db, principal, "tenant.update", "tenant", object_id=tenant_id, tenant_id=tenant_id
    ) as m:
        tenant = _visible(principal, m.session.get(Tenant, tenant_id))
        principal.require_tenant_admin(tenant.id)
        if display_name is not None:
            tenant.display_name = display_name
        if description is not None:
            tenant.description = description
        m.detail = {"display_name": tenant.display_name}
        return tenant


def delete_tenant(db: Database, principal: Principal, tenant_id: uuid.UUID) -> None:
    """Refused while the tenant still has VMs: return them first."""
    with mutation(
        db, principal, "tenant.delete", "tenant", object_id=tenant_id, tenant_id=tenant_id
    ) as m:
        tenant = _visible(principal, m.session.get(Tenant, tenant_id))
        principal.require_operator()
        live = m.session.scalar(
            select(func.count())
            .select_from(Vm)
            .where(Vm.tenant_id == tenant_id, Vm.state != VmState.DELETED.value)
        )
        if live:
            raise Conflict(f"tenant '{tenant.name}' still has {live} VMs", field="tenant_id")
        nets = m.session.scalar(
            select(func.count()).select_from(Network).where(Network.tenant_id == tenant_id)
        )
        if nets:
            raise Conflict(f"tenant '{tenant.name}' still has {nets} networks", field="tenant_id")
        m.session.query(Vm).filter(Vm.tenant_id == tenant_id).delete()
        m.detail = {"name": tenant.name}
        m.session.delete(tenant)


def get_quota(db: Database, principal: Principal, tenant_id: uuid.UUID) -> QuotaView:
    with db.read_session() as session:
        _visible(principal, session.get(Tenant, tenant_id))
        return QuotaView(tenant_id=tenant_id, usage=quotas.usage(session, tenant_id))


def quotas_of(
    db: Database, principal: Principal, tenant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Quota]:
    """Quota rows of a page of tenants in one query (not one per tenant); unseen ones left out."""
    stmt = principal.scope(select(Quota), Quota.tenant_id).where(Quota.tenant_id.in_(tenant_ids))
    with db.read_session() as s:
        return {q.tenant_id: q for q in s.scalars(stmt)}


def set_quota(
    db: Database, principal: Principal, tenant_id: uuid.UUID, limits: dict[str, int]
) -> QuotaView:
    with mutation(
        db, principal, "quota.update", "quota", object_id=tenant_id, tenant_id=tenant_id
    ) as m:
        _visible(principal, m.session.get(Tenant, tenant_id))
        principal.require_operator()
        quotas.set_limits(m.session, tenant_id, limits)
        m.detail = {"limits": limits}
        return QuotaView(tenant_id=tenant_id, usage=quotas.usage(m.session, tenant_id))
