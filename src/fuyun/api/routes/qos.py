"""QoS policies; attaching them to ports, VMs and tenants (admitted before this answers)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from fuyun.api import schemas_qos as q
from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.services import qos
from fuyun.services.qos import PolicySpec
from fuyun.store.models import Port, QosPolicy

router = APIRouter(responses=ERRORS, tags=["qos-policies"])


def _public(p: QosPolicy | None) -> q.QosPolicyPublic | None:
    return None if p is None else q.QosPolicyPublic.model_validate(p)


@router.get("/qos-policies", response_model=list[q.QosPolicyPublic])
def list_policies(ctx: Ctx, who: Caller) -> list[q.QosPolicyPublic]:
    return [q.QosPolicyPublic.model_validate(p) for p in qos.list_policies(ctx.db, who)]


@router.post("/qos-policies", response_model=q.QosPolicyPublic, status_code=status.HTTP_201_CREATED)
def create_policy(ctx: Ctx, who: Caller, body: q.QosPolicyCreate) -> q.QosPolicyPublic:
    """A ``port`` policy shapes VM ports; a ``tenant`` policy is an aggregate per host.
    422 names the field: guarantee above ceiling, ceiling above the fastest NIC, …"""
    spec = PolicySpec(
        body.name,
        body.scope,
        body.guarantee_mbps,
        body.ceiling_mbps,
        body.burst_bytes,
        body.description,
    )
    return q.QosPolicyPublic.model_validate(
        qos.create_policy(ctx.db, who, spec, tenant_id=body.tenant_id)
    )


@router.get("/qos-policies/{policy_id}", response_model=q.QosPolicyPublic)
def get_policy(ctx: Ctx, who: Caller, policy_id: uuid.UUID) -> q.QosPolicyPublic:
    return q.QosPolicyPublic.model_validate(qos.get_policy(ctx.db, who, policy_id))


@router.patch("/qos-policies/{policy_id}", response_model=q.QosPolicyPublic)
def update_policy(
    ctx: Ctx, who: Caller, policy_id: uuid.UUID, body: q.QosPolicyUpdate
) -> q.QosPolicyPublic:
    """New rates for every port using the policy; 409 if a host or ToR uplink cannot take them."""
    return q.QosPolicyPublic.model_validate(
        qos.update_policy(ctx.runtime, who, policy_id, **body.model_dump(exclude_none=True))
    )


@router.delete("/qos-policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(ctx: Ctx, who: Caller, policy_id: uuid.UUID) -> None:
    """Refused (409) while a port or the tenant uses it."""
    qos.delete_policy(ctx.db, who, policy_id)


def _attached(ctx: Ctx, ports: list[Port]) -> q.QosAttached:
    ids = {p.qos_policy_id for p in ports} - {None}
    policy = None
    if ids:
        with ctx.db.read_session() as s:
            policy = s.get(QosPolicy, ids.pop())
    return q.QosAttached(qos_policy=_public(policy), ports=[p.id for p in ports])


@router.put("/ports/{port_id}/qos-policy", response_model=q.QosAttached, tags=["ports"])
def set_port_policy(ctx: Ctx, who: Caller, port_id: uuid.UUID, body: q.QosAttach) -> q.QosAttached:
    """Attach a port policy (null detaches); 409 ``admission_refused`` names the full link."""
    return _attached(ctx, qos.set_port_policy(ctx.runtime, who, port_id, body.qos_policy))


@router.put("/vms/{vm_id}/qos-policy", response_model=q.QosAttached, tags=["vms"])
def set_vm_policy(ctx: Ctx, who: Caller, vm_id: uuid.UUID, body: q.QosAttach) -> q.QosAttached:
    """The same port policy on every NIC of the VM, all admitted or none."""
    return _attached(ctx, qos.set_vm_policy(ctx.runtime, who, vm_id, body.qos_policy))


@router.get("/tenants/{tenant_id}/qos-policy", response_model=q.QosAttached, tags=["tenants"])
def get_tenant_policy(ctx: Ctx, who: Caller, tenant_id: uuid.UUID) -> q.QosAttached:
    return q.QosAttached(qos_policy=_public(qos.get_tenant_policy(ctx.db, who, tenant_id)))


@router.put("/tenants/{tenant_id}/qos-policy", response_model=q.QosAttached, tags=["tenants"])
def set_tenant_policy(
    ctx: Ctx, who: Caller, tenant_id: uuid.UUID, body: q.QosAttach
) -> q.QosAttached:
    """Make a ``tenant`` policy the tenant's aggregate on every host (null removes it)."""
    policy = qos.set_tenant_policy(ctx.runtime, who, tenant_id, body.qos_policy)
    return q.QosAttached(qos_policy=_public(policy))
