"""Workflows as people follow them: newest first, each with its step progress.

One query for a page of workflows and one for all their steps (not one per row), so a
list of 50 costs two round trips. Tenant-scoped like every read (``principal.scope``);
another tenant's workflow is a 404. The API's ``/workflows`` and the portal's pages and
progress feed all read through here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from fuyun.domain.errors import NotFound
from fuyun.services.pagination import Page, paginate
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Workflow, WorkflowStep


@dataclass(frozen=True)
class WorkflowRow:
    workflow: Workflow
    done: int
    total: int
    current: str | None  # the step running now, if any


def row_of(workflow: Workflow, steps: list[WorkflowStep]) -> WorkflowRow:
    """A workflow's progress from its steps (in order), as the lists count it."""
    done = sum(1 for st in steps if st.state == "done")
    current = next((st.name for st in steps if st.state in ("running", "undoing")), None)
    return WorkflowRow(workflow, done, len(steps), current)


def _progress(db: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int, str | None]]:
    if not ids:
        return {}
    out: dict[uuid.UUID, list[Any]] = {i: [0, 0, None] for i in ids}
    with db.read_session() as s:
        for wf_id, name, state in s.execute(
            select(WorkflowStep.workflow_id, WorkflowStep.name, WorkflowStep.state)
            .where(WorkflowStep.workflow_id.in_(ids))
            .order_by(WorkflowStep.index)
        ):
            row = out[wf_id]
            row[1] += 1
            if state == "done":
                row[0] += 1
            elif state in ("running", "undoing") and row[2] is None:
                row[2] = name
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def list_workflows(
    db: Database,
    principal: Principal,
    *,
    state: str | None = None,
    kind: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[WorkflowRow]:
    """Newest first, tenant-scoped, with each workflow's step progress."""
    stmt: Select[Any] = principal.scope(select(Workflow), Workflow.tenant_id)
    if state:
        stmt = stmt.where(Workflow.state == state)
    if kind:
        stmt = stmt.where(Workflow.kind == kind)
    if subject:
        stmt = stmt.where(Workflow.subject == subject)
    if since is not None:
        stmt = stmt.where(Workflow.created_at >= since)
    with db.read_session() as s:
        page: Page[Workflow] = paginate(
            s,
            stmt,
            sort=Workflow.created_at,
            id_column=Workflow.id,
            limit=limit,
            cursor=cursor,
            descending=True,
        )
    progress = _progress(db, [w.id for w in page.items])
    rows = [WorkflowRow(w, *progress[w.id]) for w in page.items]
    return Page(items=rows, next_cursor=page.next_cursor)


def get_workflow(
    db: Database, principal: Principal, workflow_id: uuid.UUID
) -> tuple[Workflow, list[WorkflowStep]]:
    """One workflow and its steps in order; 404 when it is not the caller's to see."""
    with db.read_session() as s:
        wf = s.get(Workflow, workflow_id)
        if wf is None or not principal.may_see_tenant(wf.tenant_id):
            raise NotFound("no such workflow", field="workflow_id")
        steps = list(
            s.scalars(
                select(WorkflowStep)
                .where(WorkflowStep.workflow_id == wf.id)
                .order_by(WorkflowStep.index)
            )
        )
        return wf, steps
