"""VMs: apply, power verbs, return."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit
from fuyun.api.schemas import ListOf, VmCreate, VmPublic
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


@router.post("/vms", response_model=ListOf[VmPublic], status_code=status.HTTP_201_CREATED)
def create_vms(ctx: Ctx, who: Caller, body: VmCreate) -> dict:
    """Apply for ``count`` VMs of a flavor. All are created, or none."""
    made = vms.create_vms(
        ctx.compute,
        who,
        vms.VmRequest(
            name=body.name,
            flavor=body.flavor,
            image=body.image,
            count=body.count,
            host=body.host,
            tenant_id=body.tenant_id,
        ),
    )
    return {"items": [view(vm, who) for vm in made], "next_cursor": None}


@router.get("/vms/{vm_id}", response_model=VmPublic)
def get_vm(ctx: Ctx, who: Caller, vm_id: uuid.UUID) -> VmPublic:
    return view(vms.get_vm(ctx.db, who, vm_id), who)


@router.post("/vms/{vm_id}/{verb}", response_model=VmPublic)
def power(
    ctx: Ctx, who: Caller, vm_id: uuid.UUID, verb: Literal["start", "stop", "reboot"]
) -> VmPublic:
    return view(vms.power(ctx.compute, who, vm_id, verb), who)


@router.delete("/vms/{vm_id}", response_model=VmPublic)
def delete_vm(ctx: Ctx, who: Caller, vm_id: uuid.UUID) -> VmPublic:
    """Return a VM: its host capacity and quota are given back at once."""
    return view(vms.delete_vm(ctx.compute, who, vm_id), who)
