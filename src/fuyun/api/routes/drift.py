"""Drift: the hypervisor's truth against the store's, and the operator's repair or adopt."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas_drift import DriftAction, DriftPublic, DriftReport
from fuyun.domain.errors import InvalidInput
from fuyun.services import drift

router = APIRouter(responses=ERRORS, tags=["drift"])


@router.get("/drift", response_model=DriftReport)
def scan(
    ctx: Ctx, who: Caller, host: Annotated[str | None, Query(max_length=64)] = None
) -> DriftReport:
    """Differences between the store and the compute driver, on ``host`` or on every
    host the store has VMs on (operators)."""
    found = drift.scan(ctx.runtime, who, host=host)
    choice = getattr(ctx.runtime.driver, "accelerator", None)
    return DriftReport(
        compute_driver=ctx.runtime.driver.name,
        accelerator=f"{choice.accel} ({choice.reason})" if choice else None,
        items=[DriftPublic.of(d) for d in found],
    )


@router.post("/drift/repair", response_model=DriftPublic)
def repair(ctx: Ctx, who: Caller, body: DriftAction) -> DriftPublic:
    """Make the hypervisor obey the store: restart, stop, re-create, or delete a stray."""
    if body.tenant or body.flavor:
        raise InvalidInput("repair takes no tenant or flavor", field="tenant")
    return DriftPublic.of(drift.repair(ctx.runtime, who, body.host, body.vm_id))


@router.post("/drift/adopt", response_model=DriftPublic)
def adopt(ctx: Ctx, who: Caller, body: DriftAction) -> DriftPublic:
    """Make the store agree with the hypervisor (an unknown instance: with tenant and flavor)."""
    return DriftPublic.of(
        drift.adopt(ctx.runtime, who, body.host, body.vm_id, tenant=body.tenant, flavor=body.flavor)
    )
