"""Workflows: every long operation, its steps and where it stands.

Read through :mod:`fuyun.services.views.workflows`, the same read model as the portal's
workflow pages, so both scope, order and page workflows alike.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit
from fuyun.api.schemas import ListOf, WorkflowDetail, WorkflowPublic, WorkflowStepPublic
from fuyun.services.views import workflows

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
    page = workflows.list_workflows(ctx.db, who, state=state, kind=kind, limit=limit, cursor=cursor)
    return {
        "items": [WorkflowPublic.model_validate(row.workflow) for row in page.items],
        "next_cursor": page.next_cursor,
    }


@router.get("/workflows/{workflow_id}", response_model=WorkflowDetail)
def get_workflow(ctx: Ctx, who: Caller, workflow_id: uuid.UUID) -> WorkflowDetail:
    wf, steps = workflows.get_workflow(ctx.db, who, workflow_id)
    base = WorkflowPublic.model_validate(wf).model_dump()
    return WorkflowDetail(
        **base,
        data=dict(wf.data or {}),
        steps=[WorkflowStepPublic.model_validate(x) for x in steps],
    )
