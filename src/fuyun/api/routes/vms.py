"""VMs: apply, adjust, return, power verbs, and placement explanations."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit
from fuyun.api.schemas import (
    ExplanationPublic,
    ListOf,
    Verdict,
    VmAttach,
    VmCreated,
    VmCreateNetworked,
    VmPublic,
    VmResize,
)
from fuyun.services import vms
from fuyun.services.principal import Principal
from fuyun.store.models import Vm

router = APIRouter(responses=ERRORS, tags=["vms"])


def view(vm: Vm, who: Principal) -> VmPublic:
    """Partners get a host-independent view: where a VM runs is the operator's business."""
    out = VmPublic.model_validate(vm)
    if not who.sees_everything:
        out.host_id = None
    return out


@router.get("/vms", response_model=ListOf[VmPublic])
def list_vms(
    ctx: Ctx,
    who: Caller,
    state: Annotated[str | None, Query(max_length=16)] = None,
    name_prefix: Annotated[str | None, Query(max_length=64)] = None,
    host: Annotated[str | None, Query(max_length=64)] = None,
    tenant_id: uuid.UUID | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict:
    page = vms.list_vms(
        ctx.db,
        who,
        state=state,
        name_prefix=name_prefix,
        host=host,
        tenant_id=tenant_id,
        limit=limit,
        cursor=cursor,
    )
    return {"items": [view(vm, who) for vm in page.items], "next_cursor": page.next_cursor}


@router.post("/vms", response_model=VmCreated, status_code=status.HTTP_201_CREATED)
def create_vms(ctx: Ctx, who: Caller, body: VmCreateNetworked) -> VmCreated:
    """Apply for ``count`` VMs: placed by the network-aware scheduler, one NIC per network,
    booted — all of them, or none (the workflow rolls back)."""
    made = vms.create_vms(
        ctx.runtime,
        who,
        vms.VmRequest(
            name=body.name,
            flavor=body.flavor,
            image=body.image,
            count=body.count,
            host=body.host,
            tenant_id=body.tenant_id,
            networks=tuple(body.networks),
            group=body.group,
            strategy=body.strategy,
            security_groups=tuple(body.security_groups),
            qos_policy=body.qos_policy,
        ),
    )
    return VmCreated(items=[view(vm, who) for vm in made.vms], workflow_id=made.workflow_id)


@router.get("/vms/{vm_id}", response_model=VmPublic)
def get_vm(ctx: Ctx, who: Caller, vm_id: uuid.UUID) -> VmPublic:
    return view(vms.get_vm(ctx.db, who, vm_id), who)


@router.post("/vms/{vm_id}/resize", response_model=VmPublic)
def resize_vm(ctx: Ctx, who: Caller, vm_id: uuid.UUID, body: VmResize) -> VmPublic:
    """Change the flavor in place; 409 ``does_not_fit`` if its host has no room."""
    return view(vms.resize_vm(ctx.runtime, who, vm_id, body.flavor), who)


@router.post("/vms/{vm_id}/nics", response_model=VmPublic)
def attach_nic(ctx: Ctx, who: Caller, vm_id: uuid.UUID, body: VmAttach) -> VmPublic:
    """Add a NIC on one of the tenant's networks."""
    return view(vms.attach_network(ctx.runtime, who, vm_id, body.network, body.ip), who)


@router.delete("/vms/{vm_id}/nics/{port_id}", response_model=VmPublic)
def detach_nic(ctx: Ctx, who: Caller, vm_id: uuid.UUID, port_id: uuid.UUID) -> VmPublic:
    return view(vms.detach_port(ctx.runtime, who, vm_id, port_id), who)


@router.get("/vms/{vm_id}/explain", response_model=ExplanationPublic)
def explain(
    ctx: Ctx,
    who: Caller,
    vm_id: uuid.UUID,
    host: Annotated[str | None, Query(max_length=64, description="why (not) this host")] = None,
) -> ExplanationPublic:
    """Operators: the placement decision (filter counts, top scores) and, for ``host``,
    every filter's verdict on it now."""
    e = vms.explain(ctx.runtime, who, vm_id, host)
    return ExplanationPublic(
        vm_id=vm_id,
        host=e.host,
        placement=e.placement,
        candidate=host,
        verdicts=[Verdict(filter=f, passes=r is None, reason=r) for f, r in e.verdicts],
    )


@router.post("/vms/{vm_id}/{verb}", response_model=VmPublic)
def power(
    ctx: Ctx, who: Caller, vm_id: uuid.UUID, verb: Literal["start", "stop", "reboot"]
) -> VmPublic:
    return view(vms.power(ctx.runtime, who, vm_id, verb), who)


@router.delete("/vms/{vm_id}", response_model=VmPublic)
def delete_vm(ctx: Ctx, who: Caller, vm_id: uuid.UUID) -> VmPublic:
    """Return a VM: its addresses, switch tables, host capacity and quota are given back."""
    return view(vms.delete_vm(ctx.runtime, who, vm_id), who)
