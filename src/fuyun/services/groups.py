"""Server groups: affinity and anti-affinity at host, ToR, module or site level."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select

from fuyun.domain.errors import Conflict, InvalidInput, NotFound
from fuyun.services.audit import mutation
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import ServerGroup, Tenant, Vm

POLICIES = ("affinity", "anti-affinity")
LEVELS = ("host", "tor", "module", "site")


def create_group(
    db: Database,
    principal: Principal,
    *,
    name: str,
    policy: str,
    level: str,
    tenant_id: uuid.UUID | None = None,
) -> ServerGroup:
    principal.require_write()
    owner = tenant_id if principal.is_operator else principal.tenant_id
    if owner is None:
        raise InvalidInput(
            "tenant_id is required when an operator creates a group", field="tenant_id"
        )
    with mutation(db, principal, "server-group.create", "server-group", tenant_id=owner) as m:
        if m.session.get(Tenant, owner) is None:
            raise NotFound("no such tenant", field="tenant_id")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", name):
            raise InvalidInput("name must be 1-64 letters, digits or ._-", field="name")
        if policy not in POLICIES:
            raise InvalidInput("policy must be affinity or anti-affinity", field="policy")
        if level not in LEVELS:
            raise InvalidInput("level must be host, tor, module or site", field="level")
        if m.session.scalar(
            select(ServerGroup.id).where(ServerGroup.tenant_id == owner, ServerGroup.name == name)
        ):
            raise Conflict(f"group '{name}' exists", field="name")
        group = ServerGroup(tenant_id=owner, name=name, policy=policy, level=level)
        m.session.add(group)
        m.session.flush()
        m.object_id = str(group.id)
        m.detail = {"name": name, "policy": policy, "level": level}
        return group


def _visible(principal: Principal, group: ServerGroup | None) -> ServerGroup:
    if group is None or not principal.may_see_tenant(group.tenant_id):
        raise NotFound("no such server group", field="group_id")
    return group


def list_groups(db: Database, principal: Principal) -> list[ServerGroup]:
    with db.read_session() as s:
        return list(
            s.scalars(
                principal.scope(select(ServerGroup), ServerGroup.tenant_id).order_by(
                    ServerGroup.name
                )
            )
        )


def get_group(db: Database, principal: Principal, group_id: uuid.UUID) -> ServerGroup:
    with db.read_session() as s:
        return _visible(principal, s.get(ServerGroup, group_id))


def delete_group(db: Database, principal: Principal, group_id: uuid.UUID) -> None:
    principal.require_write()
    with mutation(db, principal, "server-group.delete", "server-group", object_id=group_id) as m:
        group = _visible(principal, m.session.get(ServerGroup, group_id))
        m.tenant_id = group.tenant_id
        members = m.session.scalar(
            select(func.count())
            .select_from(Vm)
            .where(Vm.group_id == group.id, Vm.state != "deleted")
        )
        if members:
            raise Conflict(f"group '{group.name}' still has {members} VMs", field="group_id")
        m.session.delete(group)
