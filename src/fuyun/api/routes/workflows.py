"""Workflows: every long operation, its steps and where it stands."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit
from fuyun.api.schemas import ListOf, WorkflowDetail, WorkflowPublic, WorkflowStepPublic
from fuyun.domain.errors import NotFound
from fuyun.services.pagination import paginate
from fuyun.store.models import Workflow, WorkflowStep

router = APIRouter(responses=ERRORS, tags=["workflows"])


@router.get("/workflows", response_model=ListOf[WorkflowPublic])
def list_workflows(
    ctx: Ctx,
    who: Caller,
    state: Annotated[str | None, Query(max_length=16)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict:
    stmt = who.scope(select(Workflow), Workflow.tenant_id)
    if state:
        stmt = stmt.where(Workflow.state == state)
    if kind:
        stmt = stmt.where(Workflow.kind == kind)
    with ctx.db.read_session() as s:
        page = paginate(
            s,
            stmt,
            sort=Workflow.created_at,
            id_column=Workflow.id,
            limit=limit,
            cursor=cursor,
            descending=True,
        )
    return {
        "items": [WorkflowPublic.model_validate(w) for w in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/workflows/{workflow_id}", response_model=WorkflowDetail)
def get_workflow(ctx: Ctx, who: Caller, workflow_id: uuid.UUID) -> WorkflowDetail:
    with ctx.db.read_session() as s:
        wf = s.get(Workflow, workflow_id)
        if wf is None or not who.may_see_tenant(wf.tenant_id):
            raise NotFound("no such workflow", field="workflow_id")
        steps = s.scalars(
            select(WorkflowStep)
            .where(WorkflowStep.workflow_id == wf.id)
            .order_by(WorkflowStep.index)
        )
        base = WorkflowPublic.model_validate(wf).model_dump()
        return WorkflowDetail(
            **base,
            data=dict(wf.data or {}),
            steps=[WorkflowStepPublic.model_validate(x) for x in steps],
        )
