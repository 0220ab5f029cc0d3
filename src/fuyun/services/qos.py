"""QoS policies: a tenant's named guarantees and ceilings, attached to ports, VMs or the tenant.

Every verb is one audited transaction (:func:`~fuyun.services.audit.mutation`)
that ends in :func:`~fuyun.services.qos_admission.settle`: the guarantees it
changes are admitted on the host and ToR uplinks and charged to the tenant's
``bandwidth_mbps`` quota — or the whole change is refused — and the QoS documents
of the hosts and ToRs it touched are recompiled before it commits.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.domain.errors import Conflict, InvalidInput, NotFound
from fuyun.services.audit import mutation
from fuyun.services.principal import Principal
from fuyun.services.qos_admission import pairs_of_ports, pairs_of_tenant, settle
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Host, Port, QosPolicy, Tenant, TenantQos, Vm

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SCOPES = ("port", "tenant")
MAX_MBPS = 400_000
MAX_BURST_BYTES = 1 << 30


@dataclass(frozen=True)
class PolicySpec:
    name: str
    scope: str = "port"
    guarantee_mbps: int = 0
    ceiling_mbps: int = 0
    burst_bytes: int = 0
    description: str = ""


def check(s: Session, spec: PolicySpec) -> None:
    """Refuse a policy that cannot be honoured, with a 422 naming the field."""
    if not NAME.match(spec.name):
        raise InvalidInput("name must be 1-64 letters, digits or ._-", field="name")
    if spec.scope not in SCOPES:
        raise InvalidInput("scope must be port or tenant", field="scope")
    if spec.ceiling_mbps <= 0:
        raise InvalidInput("ceiling_mbps must be positive", field="ceiling_mbps")
    if spec.guarantee_mbps < 0:
        raise InvalidInput("guarantee_mbps must not be negative", field="guarantee_mbps")
    if spec.guarantee_mbps > spec.ceiling_mbps:
        raise InvalidInput(
            f"guarantee_mbps {spec.guarantee_mbps} exceeds ceiling_mbps {spec.ceiling_mbps}",
            field="guarantee_mbps",
        )
    if not 0 <= spec.burst_bytes <= MAX_BURST_BYTES:
        raise InvalidInput(f"burst_bytes must be 0-{MAX_BURST_BYTES}", field="burst_bytes")
    if len(spec.description) > 256:
        raise InvalidInput("description is longer than 256 characters", field="description")
    fastest = s.scalar(select(func.max(Host.nic_mbps))) or MAX_MBPS
    if spec.scope == "port" and spec.ceiling_mbps > fastest:
        raise InvalidInput(
            f"ceiling_mbps {spec.ceiling_mbps} is above the fastest host NIC ({fastest} Mbit/s)",
            field="ceiling_mbps",
        )
    if spec.ceiling_mbps > MAX_MBPS:
        raise InvalidInput(f"ceiling_mbps must be at most {MAX_MBPS}", field="ceiling_mbps")


def _visible(principal: Principal, policy: QosPolicy | None) -> QosPolicy:
    if policy is None or not principal.may_see_tenant(policy.tenant_id):
        raise NotFound("no such QoS policy", field="policy_id")
    return policy


def resolve(s: Session, tenant_id: uuid.UUID, ref: str, field: str, scope: str) -> QosPolicy:
    """A tenant's policy by id or name, of the wanted scope; 404/422 naming ``field``."""
    stmt = select(QosPolicy).where(QosPolicy.tenant_id == tenant_id)
    try:
        policy = s.scalar(stmt.where(QosPolicy.id == uuid.UUID(ref)))
    except ValueError:
        policy = s.scalar(stmt.where(QosPolicy.name == ref))
    if policy is None:
        raise NotFound(f"no QoS policy '{ref}'", field=field)
    if policy.scope != scope:
        raise InvalidInput(f"QoS policy '{policy.name}' is a {policy.scope} policy", field=field)
    return policy


def create_policy(
    db: Database, principal: Principal, spec: PolicySpec, *, tenant_id: uuid.UUID | None = None
) -> QosPolicy:
    principal.require_write()
    owner = tenant_id if principal.is_operator else principal.tenant_id
    if owner is None:
        raise InvalidInput(
            "tenant_id is required when an operator creates a QoS policy", field="tenant_id"
        )
    with mutation(db, principal, "qos-policy.create", "qos-policy", tenant_id=owner) as m:
        s = m.session
        if s.get(Tenant, owner) is None:
            raise NotFound("no such tenant", field="tenant_id")
        check(s, spec)
        if s.scalar(
            select(QosPolicy.id).where(QosPolicy.tenant_id == owner, QosPolicy.name == spec.name)
        ):
            raise Conflict(f"QoS policy '{spec.name}' exists", field="name")
        policy = QosPolicy(
            tenant_id=owner,
            name=spec.name,
            scope=spec.scope,
            guarantee_mbps=spec.guarantee_mbps,
            ceiling_mbps=spec.ceiling_mbps,
            burst_bytes=spec.burst_bytes,
            description=spec.description,
        )
        s.add(policy)
        s.flush()
        m.object_id = str(policy.id)
        m.detail = _detail(spec)
        return policy


def _detail(spec: PolicySpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "scope": spec.scope,
        "guarantee_mbps": spec.guarantee_mbps,
        "ceiling_mbps": spec.ceiling_mbps,
        "burst_bytes": spec.burst_bytes,
    }


def list_policies(db: Database, principal: Principal) -> list[QosPolicy]:
    with db.read_session() as s:
        stmt = principal.scope(select(QosPolicy), QosPolicy.tenant_id)
        return list(s.scalars(stmt.order_by(QosPolicy.tenant_id, QosPolicy.name)))


def get_policy(db: Database, principal: Principal, policy_id: uuid.UUID) -> QosPolicy:
    with db.read_session() as s:
        return _visible(principal, s.get(QosPolicy, policy_id))


def _users(s: Session, policy: QosPolicy) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """The (tenant, host) pairs whose admission depends on the policy."""
    if policy.scope == "tenant":
        if s.get(TenantQos, policy.tenant_id) is None:
            return set()
        return pairs_of_tenant(s, policy.tenant_id)
    return pairs_of_ports(s, s.scalars(select(Port.id).where(Port.qos_policy_id == policy.id)))


def update_policy(
    rt: Runtime,
    principal: Principal,
    policy_id: uuid.UUID,
    *,
    guarantee_mbps: int | None = None,
    ceiling_mbps: int | None = None,
    burst_bytes: int | None = None,
    description: str | None = None,
) -> QosPolicy:
    """Change rates in place; every port using the policy is re-admitted, or nothing changes."""
    principal.require_write()
    with mutation(rt.db, principal, "qos-policy.update", "qos-policy", object_id=policy_id) as m:
        s = m.session
        policy = _visible(principal, s.get(QosPolicy, policy_id))
        m.tenant_id = policy.tenant_id
        spec = PolicySpec(
            policy.name,
            policy.scope,
            policy.guarantee_mbps if guarantee_mbps is None else guarantee_mbps,
            policy.ceiling_mbps if ceiling_mbps is None else ceiling_mbps,
            policy.burst_bytes if burst_bytes is None else burst_bytes,
            policy.description if description is None else description,
        )
        check(s, spec)
        policy.guarantee_mbps, policy.ceiling_mbps = spec.guarantee_mbps, spec.ceiling_mbps
        policy.burst_bytes, policy.description = spec.burst_bytes, spec.description
        s.flush()
        pairs = _users(s, policy)
        if policy.scope == "port":
            _check_ceiling(s, policy, {h for _, h in pairs}, "ceiling_mbps")
        settle(s, pairs, field="guarantee_mbps")
        m.detail = _detail(spec)
    rt.placement.refresh_hosts({h for _, h in pairs})
    return policy


def delete_policy(db: Database, principal: Principal, policy_id: uuid.UUID) -> None:
    principal.require_write()
    with mutation(db, principal, "qos-policy.delete", "qos-policy", object_id=policy_id) as m:
        s = m.session
        policy = _visible(principal, s.get(QosPolicy, policy_id))
        m.tenant_id = policy.tenant_id
        ports = s.scalar(select(func.count()).where(Port.qos_policy_id == policy.id))
        if ports:
            raise Conflict(f"QoS policy '{policy.name}' is on {ports} ports", field="policy_id")
        if s.scalar(select(TenantQos.tenant_id).where(TenantQos.policy_id == policy.id)):
            raise Conflict(
                f"QoS policy '{policy.name}' is the tenant's aggregate", field="policy_id"
            )
        m.detail = {"name": policy.name}
        s.delete(policy)


def _check_ceiling(s: Session, policy: QosPolicy, host_ids: set[uuid.UUID], field: str) -> None:
    """A port's ceiling must fit the NIC of the host it is on."""
    if not host_ids:
        return
    name, nic = s.execute(
        select(Host.name, Host.nic_mbps)
        .where(Host.id.in_(list(host_ids)))
        .order_by(Host.nic_mbps, Host.name)
        .limit(1)
    ).one()
    if policy.ceiling_mbps > nic:
        raise InvalidInput(
            f"ceiling {policy.ceiling_mbps} Mbit/s of QoS policy '{policy.name}' is above"
            f" the {nic} Mbit/s NIC of host {name}",
            field=field,
        )


def _set_ports(
    rt: Runtime,
    principal: Principal,
    ports_of: str,
    object_id: uuid.UUID,
    policy_ref: str | None,
) -> list[Port]:
    principal.require_write()
    action = "port.qos" if ports_of == "port" else "vm.qos"
    with mutation(rt.db, principal, action, ports_of, object_id=object_id) as m:
        s = m.session
        if ports_of == "port":
            port = s.get(Port, object_id)
            if port is None or not principal.may_see_tenant(port.tenant_id):
                raise NotFound("no such port", field="port_id")
            ports, tenant_id = [port], port.tenant_id
        else:
            vm = s.get(Vm, object_id)
            if vm is None or vm.state == "deleted" or not principal.may_see_tenant(vm.tenant_id):
                raise NotFound("no such VM", field="vm_id")
            ports = list(s.scalars(select(Port).where(Port.vm_id == vm.id).order_by(Port.name)))
            tenant_id = vm.tenant_id
        m.tenant_id = tenant_id
        policy = resolve(s, tenant_id, policy_ref, "qos_policy", "port") if policy_ref else None
        if policy is not None:
            _check_ceiling(
                s, policy, {p.host_id for p in ports if p.host_id is not None}, "qos_policy"
            )
        before = pairs_of_ports(s, [p.id for p in ports])
        for p in ports:
            p.qos_policy_id = policy.id if policy else None
        s.flush()
        settle(s, before)
        m.detail = {"qos_policy": policy.name if policy else None, "ports": len(ports)}
    rt.placement.refresh_hosts({h for _, h in before})
    return ports


def set_port_policy(
    rt: Runtime, principal: Principal, port_id: uuid.UUID, policy_ref: str | None
) -> list[Port]:
    """Attach (or with None, detach) a port policy; admitted on the port's host and ToR."""
    return _set_ports(rt, principal, "port", port_id, policy_ref)


def set_vm_policy(
    rt: Runtime, principal: Principal, vm_id: uuid.UUID, policy_ref: str | None
) -> list[Port]:
    """The same policy on every port of a VM, admitted together or not at all."""
    return _set_ports(rt, principal, "vm", vm_id, policy_ref)


def get_tenant_policy(db: Database, principal: Principal, tenant_id: uuid.UUID) -> QosPolicy | None:
    if not principal.may_see_tenant(tenant_id):
        raise NotFound("no such tenant", field="tenant_id")
    with db.read_session() as s:
        return s.scalar(
            select(QosPolicy)
            .join(TenantQos, TenantQos.policy_id == QosPolicy.id)
            .where(TenantQos.tenant_id == tenant_id)
        )


def set_tenant_policy(
    rt: Runtime, principal: Principal, tenant_id: uuid.UUID, policy_ref: str | None
) -> QosPolicy | None:
    """Make a ``tenant`` policy the aggregate (None removes it); re-admits every host."""
    principal.require_write()
    if not principal.may_see_tenant(tenant_id):
        raise NotFound("no such tenant", field="tenant_id")
    with mutation(rt.db, principal, "tenant.qos", "tenant", object_id=tenant_id) as m:
        s = m.session
        m.tenant_id = tenant_id
        if s.get(Tenant, tenant_id) is None:
            raise NotFound("no such tenant", field="tenant_id")
        policy = resolve(s, tenant_id, policy_ref, "qos_policy", "tenant") if policy_ref else None
        row = s.get(TenantQos, tenant_id)
        if policy is None and row is not None:
            s.delete(row)
        elif policy is not None and row is None:
            s.add(TenantQos(tenant_id=tenant_id, policy_id=policy.id))
        elif policy is not None and row is not None:
            row.policy_id = policy.id
        s.flush()
        pairs = pairs_of_tenant(s, tenant_id)
        settle(s, pairs)
        m.detail = {"qos_policy": policy.name if policy else None, "hosts": len(pairs)}
    rt.placement.refresh_hosts({h for _, h in pairs})
    return policy
