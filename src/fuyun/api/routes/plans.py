"""``POST /plans``: capacity planning and what-if on an in-memory copy (operators).

The route is a plain ``def``: FastAPI runs it in a worker thread, so a plan that
takes seconds never blocks the event loop; the service lets one plan run at a time.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas_plan import FabricIn, PlanIn
from fuyun.domain.errors import NotFound
from fuyun.services import planning

router = APIRouter(responses=ERRORS, tags=["plans"])


def _source(f: FabricIn) -> planning.FabricSource:
    return planning.FabricSource(**f.model_dump())


def request_of(body: PlanIn) -> planning.PlanRequest:
    scenario = body.scenario.model_dump(exclude_none=True)
    name = scenario.pop("name")
    return planning.PlanRequest(
        fabric=_source(body.fabric),
        scenario=name,
        overrides=scenario,
        remedies=body.remedies,
        strategies=body.strategies,
        nplus1=body.nplus1,
        nplus1_limit=body.nplus1_limit,
        compare_with=None if body.compare_with is None else _source(body.compare_with),
    )


@router.post("/plans")
def create_plan(ctx: Ctx, who: Caller, body: PlanIn) -> dict[str, Any]:
    """Run a growth scenario (or compare two fabrics under one); the inventory does not change.

    The run is stored (``run_id``): ``GET /plans/latest`` and the console read it back.
    """
    run = planning.run_and_store(ctx.db, ctx.settings, who, request_of(body))
    return {**run.document, "run_id": str(run.id)}


@router.get("/plans/latest")
def latest_plan(ctx: Ctx, who: Caller) -> dict[str, Any]:
    """The latest stored plan run: when, by whom, asked what, stale or not, and the plan."""
    run = planning.latest(ctx.db, who)
    if run is None:
        raise NotFound("no plan was stored yet: POST /plans", field="plan")
    return {
        "id": str(run.id),
        "created_at": run.created_at.isoformat(),
        "created_by": run.created_by,
        "age_seconds": round(run.age_seconds, 1),
        "seconds": run.seconds,
        "basis": run.basis,
        "current_basis": run.current_basis,
        "stale": run.stale,
        "parameters": run.parameters,
        "summary": run.summary,
        "plan": run.document,
    }


@router.get("/plans/presets")
def plan_presets(who: Caller) -> dict[str, Any]:
    """The scenario presets and fabric sources a plan can start from (operators)."""
    who.require_operator()
    return planning.presets()
