"""Security groups, their rules and members, operator global rules, and verification.

Every change recompiles the devices it affects in its own transaction (see
:mod:`fuyun.services.enforcement`), so desired state is never behind intent.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.errors import Conflict, InvalidInput, NotFound
from fuyun.services import quotas
from fuyun.services.audit import mutation
from fuyun.services.enforcement import affected_hosts, all_hosts_with_ports, recompile
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import (
    GlobalRule,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
    Tenant,
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DEFAULT_GROUP = "default"
DIRECTIONS = ("ingress", "egress")
PROTOCOLS = ("any", "tcp", "udp", "icmp")


@dataclass(frozen=True)
class RuleSpec:
    direction: str
    ethertype: int = 4
    protocol: str = "any"
    port_min: int | None = None
    port_max: int | None = None
    remote_cidr: str | None = None
    remote_group: str | None = None
    description: str = ""


def check_rule(spec: RuleSpec) -> tuple[int | None, int | None, str | None]:
    """Validate a rule; answers the normalised port range and CIDR, or a 422 naming the field."""
    if spec.direction not in DIRECTIONS:
        raise InvalidInput("direction must be ingress or egress", field="direction")
    if spec.ethertype not in (4, 6):
        raise InvalidInput("ethertype must be 4 or 6", field="ethertype")
    if spec.protocol not in PROTOCOLS:
        raise InvalidInput(f"protocol must be one of {', '.join(PROTOCOLS)}", field="protocol")
    lo, hi = spec.port_min, spec.port_max
    if lo is not None or hi is not None:
        if spec.protocol not in ("tcp", "udp"):
            raise InvalidInput("ports need protocol tcp or udp", field="port_min")
        lo = lo if lo is not None else hi
        hi = hi if hi is not None else lo
        assert lo is not None and hi is not None
        if not 1 <= lo <= 65535:
            raise InvalidInput("port_min must be 1-65535", field="port_min")
        if not 1 <= hi <= 65535:
            raise InvalidInput("port_max must be 1-65535", field="port_max")
        if lo > hi:
            raise InvalidInput("port_min must not exceed port_max", field="port_max")
    cidr = None
    if spec.remote_cidr is not None:
        try:
            net = ipaddress.ip_network(spec.remote_cidr, strict=True)
        except ValueError as exc:
            raise InvalidInput(
                f"'{spec.remote_cidr}' is not a valid CIDR: {exc}", field="remote_cidr"
            ) from None
        if net.version != spec.ethertype:
            raise InvalidInput(f"{net} is not IPv{spec.ethertype}", field="remote_cidr")
        cidr = str(net)
    if cidr is not None and spec.remote_group is not None:
        raise InvalidInput("give remote_cidr or remote_group, not both", field="remote_group")
    if len(spec.description) > 256:
        raise InvalidInput("description is longer than 256 characters", field="description")
    return lo, hi, cidr


def _visible_group(s: Session, principal: Principal, group_id: uuid.UUID) -> SecurityGroup:
    group = s.get(SecurityGroup, group_id)
    if group is None or not principal.may_see_tenant(group.tenant_id):
        raise NotFound("no such security group", field="group_id")
    return group


def resolve_group(s: Session, tenant_id: uuid.UUID, ref: str, field: str) -> SecurityGroup:
    stmt = select(SecurityGroup).where(SecurityGroup.tenant_id == tenant_id)
    try:
        group = s.scalar(stmt.where(SecurityGroup.id == uuid.UUID(ref)))
    except ValueError:
        group = s.scalar(stmt.where(SecurityGroup.name == ref))
    if group is None:
        raise NotFound(f"no security group '{ref}'", field=field)
    return group


def ensure_default_group(s: Session, tenant_id: uuid.UUID) -> SecurityGroup:
    """The tenant's default group: egress anywhere, ingress from its own members only."""
    group = s.scalar(
        select(SecurityGroup).where(
            SecurityGroup.tenant_id == tenant_id, SecurityGroup.name == DEFAULT_GROUP
        )
    )
    if group is not None:
        return group
    group = SecurityGroup(
        tenant_id=tenant_id,
        name=DEFAULT_GROUP,
        description="egress anywhere; ingress from members of this group",
    )
    s.add(group)
    s.flush()
    for family in (4, 6):
        s.add(
            SecurityGroupRule(
                group_id=group.id,
                tenant_id=tenant_id,
                direction="egress",
                ethertype=family,
                protocol="any",
            )
        )
        s.add(
            SecurityGroupRule(
                group_id=group.id,
                tenant_id=tenant_id,
                direction="ingress",
                ethertype=family,
                protocol="any",
                remote_group_id=group.id,
            )
        )
    s.flush()
    return group


def create_group(
    db: Database,
    principal: Principal,
    *,
    name: str,
    description: str = "",
    tenant_id: uuid.UUID | None = None,
) -> SecurityGroup:
    principal.require_write()
    owner = tenant_id if principal.is_operator else principal.tenant_id
    if owner is None:
        raise InvalidInput(
            "tenant_id is required when an operator creates a group", field="tenant_id"
        )
    with mutation(db, principal, "security-group.create", "security-group", tenant_id=owner) as m:
        if m.session.get(Tenant, owner) is None:
            raise NotFound("no such tenant", field="tenant_id")
        if not NAME.match(name):
            raise InvalidInput("name must be 1-63 letters, digits or ._-", field="name")
        if m.session.scalar(
            select(SecurityGroup.id).where(
                SecurityGroup.tenant_id == owner, SecurityGroup.name == name
            )
        ):
            raise Conflict(f"security group '{name}' exists", field="name")
        group = (
            ensure_default_group(m.session, owner)
            if name == DEFAULT_GROUP
            else SecurityGroup(tenant_id=owner, name=name, description=description)
        )
        m.session.add(group)
        m.session.flush()
        m.object_id, m.detail = str(group.id), {"name": name}
        return group


def list_groups(db: Database, principal: Principal) -> list[SecurityGroup]:
    with db.read_session() as s:
        return list(
            s.scalars(
                principal.scope(select(SecurityGroup), SecurityGroup.tenant_id).order_by(
                    SecurityGroup.name
                )
            )
        )


def get_group(
    db: Database, principal: Principal, group_id: uuid.UUID
) -> tuple[SecurityGroup, list[SecurityGroupRule]]:
    with db.read_session() as s:
        group = _visible_group(s, principal, group_id)
        rules = list(
            s.scalars(
                select(SecurityGroupRule)
                .where(SecurityGroupRule.group_id == group.id)
                .order_by(SecurityGroupRule.created_at)
            )
        )
        return group, rules


def delete_group(db: Database, principal: Principal, group_id: uuid.UUID) -> None:
    principal.require_write()
    with mutation(
        db, principal, "security-group.delete", "security-group", object_id=group_id
    ) as m:
        s = m.session
        group = _visible_group(s, principal, group_id)
        m.tenant_id = group.tenant_id
        ports = s.scalar(
            select(func.count())
            .select_from(PortSecurityGroup)
            .where(PortSecurityGroup.group_id == group.id)
        )
        if ports:
            raise Conflict(
                f"security group '{group.name}' is on {ports} ports",
                field="group_id",
                code="group_in_use",
            )
        users = s.scalar(
            select(func.count())
            .select_from(SecurityGroupRule)
            .where(
                SecurityGroupRule.remote_group_id == group.id,
                SecurityGroupRule.group_id != group.id,
            )
        )
        if users:
            raise Conflict(
                f"{users} rules of other groups refer to '{group.name}'",
                field="group_id",
                code="group_in_use",
            )
        own_rules = (
            s.scalar(
                select(func.count())
                .select_from(SecurityGroupRule)
                .where(SecurityGroupRule.group_id == group.id)
            )
            or 0
        )
        quotas.release(s, group.tenant_id, rules=own_rules)
        for rule in s.scalars(
            select(SecurityGroupRule).where(SecurityGroupRule.group_id == group.id)
        ):
            s.delete(rule)
        s.flush()
        s.delete(group)


def add_rule(
    db: Database, principal: Principal, group_id: uuid.UUID, spec: RuleSpec
) -> SecurityGroupRule:
    principal.require_write()
    with mutation(db, principal, "security-group-rule.create", "security-group-rule") as m:
        s = m.session
        group = _visible_group(s, principal, group_id)
        m.tenant_id = group.tenant_id
        lo, hi, cidr = check_rule(spec)
        remote_id = None
        if spec.remote_group is not None:
            remote_id = resolve_group(s, group.tenant_id, spec.remote_group, "remote_group").id
        quotas.claim(s, group.tenant_id, rules=1)
        rule = SecurityGroupRule(
            group_id=group.id,
            tenant_id=group.tenant_id,
            direction=spec.direction,
            ethertype=spec.ethertype,
            protocol=spec.protocol,
            port_min=lo,
            port_max=hi,
            remote_cidr=cidr,
            remote_group_id=remote_id,
            description=spec.description,
        )
        s.add(rule)
        s.flush()
        compiled = recompile(s, affected_hosts(s, groups=[group.id]))
        m.object_id = str(rule.id)
        m.detail = {
            "group": group.name,
            "direction": spec.direction,
            "protocol": spec.protocol,
            "ports": [lo, hi],
            "remote": cidr or spec.remote_group,
            "devices_changed": compiled.changed,
        }
        return rule


def delete_rule(db: Database, principal: Principal, rule_id: uuid.UUID) -> None:
    principal.require_write()
    with mutation(
        db, principal, "security-group-rule.delete", "security-group-rule", object_id=rule_id
    ) as m:
        s = m.session
        rule = s.get(SecurityGroupRule, rule_id)
        if rule is None or not principal.may_see_tenant(rule.tenant_id):
            raise NotFound("no such rule", field="rule_id")
        m.tenant_id = rule.tenant_id
        group_id = rule.group_id
        quotas.release(s, rule.tenant_id, rules=1)
        s.delete(rule)
        s.flush()
        compiled = recompile(s, affected_hosts(s, groups=[group_id]))
        m.detail = {"devices_changed": compiled.changed}


def set_port_groups(s: Session, port: Port, groups: list[SecurityGroup]) -> set[uuid.UUID]:
    """Replace a port's groups inside the caller's transaction; answers hosts to recompile."""
    old = set(
        s.scalars(select(PortSecurityGroup.group_id).where(PortSecurityGroup.port_id == port.id))
    )
    new = {g.id for g in groups}
    for g in old - new:
        s.delete(s.get(PortSecurityGroup, (port.id, g)))
    for g in new - old:
        s.add(PortSecurityGroup(port_id=port.id, group_id=g))
    s.flush()
    return affected_hosts(s, membership_of=old | new, hosts=[port.host_id] if port.host_id else [])


def update_port_groups(
    db: Database, settings: Settings, principal: Principal, port_id: uuid.UUID, refs: list[str]
) -> list[SecurityGroup]:
    principal.require_write()
    with mutation(db, principal, "port.set-security-groups", "port", object_id=port_id) as m:
        s = m.session
        port = s.get(Port, port_id)
        if port is None or not principal.may_see_tenant(port.tenant_id):
            raise NotFound("no such port", field="port_id")
        m.tenant_id = port.tenant_id
        groups = [resolve_group(s, port.tenant_id, r, "security_groups") for r in refs]
        compiled = recompile(s, set_port_groups(s, port, groups))
        m.detail = {"groups": [g.name for g in groups], "devices_changed": compiled.changed}
        return groups


def groups_of_port(db: Database, port_id: uuid.UUID) -> list[str]:
    with db.read_session() as s:
        return list(
            s.scalars(
                select(SecurityGroup.name)
                .join(PortSecurityGroup, PortSecurityGroup.group_id == SecurityGroup.id)
                .where(PortSecurityGroup.port_id == port_id)
                .order_by(SecurityGroup.name)
            )
        )


# -- operator global rules ---------------------------------------------------------------


def list_global_rules(db: Database, principal: Principal) -> list[GlobalRule]:
    with db.read_session() as s:
        return list(
            s.scalars(select(GlobalRule).order_by(GlobalRule.priority, GlobalRule.created_at))
        )


def add_global_rule(
    db: Database, principal: Principal, *, action: str, spec: RuleSpec, priority: int = 100
) -> GlobalRule:
    principal.require_operator()
    with mutation(db, principal, "global-rule.create", "global-rule") as m:
        m.tenant_id = None
        if action not in ("allow", "deny"):
            raise InvalidInput("action must be allow or deny", field="action")
        if spec.remote_group is not None:
            raise InvalidInput("global rules match CIDRs, not tenant groups", field="remote_group")
        lo, hi, cidr = check_rule(spec)
        rule = GlobalRule(
            action=action,
            direction=spec.direction,
            ethertype=spec.ethertype,
            protocol=spec.protocol,
            port_min=lo,
            port_max=hi,
            remote_cidr=cidr,
            priority=priority,
            description=spec.description,
        )
        m.session.add(rule)
        m.session.flush()
        compiled = recompile(m.session, all_hosts_with_ports(m.session))
        m.object_id = str(rule.id)
        m.detail = {"action": action, "remote": cidr, "devices_changed": compiled.changed}
        return rule


def delete_global_rule(db: Database, principal: Principal, rule_id: uuid.UUID) -> None:
    principal.require_operator()
    with mutation(db, principal, "global-rule.delete", "global-rule", object_id=rule_id) as m:
        m.tenant_id = None
        rule = m.session.get(GlobalRule, rule_id)
        if rule is None:
            raise NotFound("no such global rule", field="rule_id")
        m.session.delete(rule)
        m.session.flush()
        compiled = recompile(m.session, all_hosts_with_ports(m.session))
        m.detail = {"devices_changed": compiled.changed}
