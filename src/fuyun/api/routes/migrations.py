"""Migrations: plan and make a move, evacuate/drain/rebalance in batches, plan for a lost site.

Operators only. A plan never changes anything; a move answers when it is done
(or rolled back, with the error); a batch answers 202 at once and shows its
progress at ``/migration-batches/{id}``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas import ListOf
from fuyun.api.schemas_migration import (
    BatchIn,
    BatchPublic,
    HaGroupPublic,
    MigrateIn,
    MigrationPlanPublic,
    MigrationPublic,
    MigrationResultPublic,
    MigrationTarget,
    PortMovePublic,
    SiteEvacuationPlanPublic,
    SiteVmPublic,
    TableChangePublic,
)
from fuyun.services.migration import batch, dr, service
from fuyun.services.migration.plan import MigrationPlan, Target

router = APIRouter(responses=ERRORS, tags=["migrations"])


def _target(body: MigrationTarget) -> Target:
    return Target(host=body.to, tor=body.to_tor, module=body.to_module, site=body.to_site)


def plan_view(plan: MigrationPlan) -> MigrationPlanPublic:
    return MigrationPlanPublic(
        vm_id=plan.vm_id,
        vm=plan.vm,
        state=plan.state,
        source_host=plan.source_host,
        source_tor=plan.source_tor,
        target_host=plan.target_host,
        target_tor=plan.target_tor,
        scope=plan.scope,  # type: ignore[arg-type]
        feasible=plan.feasible,
        keeps_ip=plan.keeps_ip,
        chosen_by=plan.chosen_by,
        reasons=plan.reasons,
        changes=plan.changes(),
        ports=[
            PortMovePublic(
                port_id=p.port_id,
                network=p.network,
                vlan=p.vlan,
                mac=p.mac,
                ips=p.ips,
                span=p.span,
                interconnect=p.interconnect,
                extend=[TableChangePublic(**asdict(c)) for c in p.extend],
                shrink=[TableChangePublic(**asdict(c)) for c in p.shrink],
            )
            for p in plan.ports
        ],
        devices=plan.devices,
        notes=plan.notes,
    )


@router.post("/vms/{vm_id}/migration-plan", response_model=MigrationPlanPublic)
def plan(ctx: Ctx, who: Caller, vm_id: uuid.UUID, body: MigrationTarget) -> MigrationPlanPublic:
    """Can the VM move (to ``to``, or within a ToR, module or site) keeping its IP and MAC?
    Yes with the exact network changes, or no with every reason. Changes nothing."""
    return plan_view(service.plan(ctx.runtime, who, vm_id, _target(body)))


@router.post(
    "/vms/{vm_id}/migrate",
    response_model=MigrationResultPublic,
    responses={202: {"model": MigrationResultPublic, "description": "started; not waited for"}},
)
def migrate(
    ctx: Ctx,
    who: Caller,
    vm_id: uuid.UUID,
    body: MigrateIn,
    response: Response,
    wait: Annotated[bool, Query(description="false: answer 202 once the move started")] = True,
) -> MigrationResultPublic:
    """Live-migrate: destination programmed and converged first, then the VM moves, then
    the source is cleaned. 409 ``infeasible`` with the plan's reasons; a failed step rolls
    the whole move back (502 ``driver_error``, 409 ``verify_failed``). With
    ``?wait=false`` the answer is ``202`` as soon as the move is planned and started
    (``state: running``, ``Location: /api/v1/migrations/{workflow_id}`` to follow it)."""
    run = service.migrate if wait else service.start
    result = run(ctx.runtime, who, vm_id, _target(body), max_downtime_ms=body.max_downtime_ms)
    if not wait:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"/api/v1/migrations/{result.workflow_id}"
    return MigrationResultPublic(
        workflow_id=result.workflow_id,
        state=result.state,
        plan=plan_view(result.plan),
        stats=result.stats,
    )


def migration_view(m: service.MigrationView) -> MigrationPublic:
    return MigrationPublic(
        id=m.id,
        vm_id=m.vm_id,
        state=m.state,
        target=m.target,
        scope=m.scope,
        error=m.error,
        progress=m.progress,
        steps=[{"name": n, "state": st} for n, st in m.steps],
        created_at=m.created_at,
        stats=dict(m.data.get("stats", {})),
    )


@router.get("/migrations/{workflow_id}", response_model=MigrationPublic)
def get_migration(ctx: Ctx, who: Caller, workflow_id: uuid.UUID) -> MigrationPublic:
    """One move: its state, each step's state, progress, and QEMU's figures once moved."""
    return migration_view(service.get_migration(ctx.runtime, who, workflow_id))


@router.get("/migrations", response_model=ListOf[MigrationPublic])
def list_migrations(
    ctx: Ctx,
    who: Caller,
    vm_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict:
    rows = service.list_migrations(ctx.runtime, who, vm_id=vm_id, limit=limit)
    return {
        "items": [migration_view(m) for m in rows],
        "next_cursor": None,
    }


def _start(ctx: Ctx, who: Caller, kind: str, target: str, body: BatchIn) -> BatchPublic:
    limits = batch.Limits(body.per_host, body.per_tor, body.per_site, body.workers)
    batch_id = batch.start(ctx.runtime, who, kind, target, limits=limits)
    return BatchPublic.model_validate(batch.get(ctx.runtime, who, batch_id))


@router.post(
    "/hosts/{object_id}/evacuate", response_model=BatchPublic, status_code=status.HTTP_202_ACCEPTED
)
def evacuate_host(ctx: Ctx, who: Caller, object_id: str, body: BatchIn) -> BatchPublic:
    """Maintenance for the host, then move every VM off it (anti-affinity respected)."""
    return _start(ctx, who, "evacuate-host", object_id, body)


@router.post(
    "/switches/{object_id}/drain", response_model=BatchPublic, status_code=status.HTTP_202_ACCEPTED
)
def drain_tor(ctx: Ctx, who: Caller, object_id: str, body: BatchIn) -> BatchPublic:
    """Maintenance for every host below the ToR, then move their VMs elsewhere."""
    return _start(ctx, who, "drain-tor", object_id, body)


@router.post(
    "/modules/{object_id}/rebalance",
    response_model=BatchPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
def rebalance_module(ctx: Ctx, who: Caller, object_id: str, body: BatchIn) -> BatchPublic:
    """Spread VMs from the module's fullest hosts over its emptiest."""
    return _start(ctx, who, "rebalance-module", object_id, body)


@router.get("/migration-batches", response_model=ListOf[BatchPublic])
def list_batches(ctx: Ctx, who: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
    rows = batch.recent(ctx.runtime, who, limit)
    return {"items": [BatchPublic.model_validate(b) for b in rows], "next_cursor": None}


@router.get("/migration-batches/{batch_id}", response_model=BatchPublic)
def get_batch(ctx: Ctx, who: Caller, batch_id: uuid.UUID) -> BatchPublic:
    return BatchPublic.model_validate(batch.get(ctx.runtime, who, batch_id))


@router.get("/sites/{object_id}/evacuation-plan", response_model=SiteEvacuationPlanPublic)
def site_evacuation_plan(
    ctx: Ctx,
    who: Caller,
    object_id: str,
    to_site: Annotated[str | None, Query(max_length=64)] = None,
) -> SiteEvacuationPlanPublic:
    """If the site were lost: which VMs come back elsewhere keeping their IPs (L2 extended)
    and which need new addresses, and whether each HA group keeps members elsewhere."""
    p = dr.site_plan(ctx.runtime, who, object_id, to_site=to_site)
    return SiteEvacuationPlanPublic(
        site=p.site,
        to_site=p.to_site,
        keep_ip=p.keep_ip,
        readdress=p.readdress,
        vms=[SiteVmPublic(**asdict(v)) for v in p.vms],
        groups=[HaGroupPublic(**asdict(g), survives=g.survives) for g in p.groups],
    )
