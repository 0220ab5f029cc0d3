"""The audit log, workflows with live progress, and the small JSON feed the pages poll.

The JSON endpoints answer with the session cookie (no token in JavaScript) and
are tenant-scoped like everything else; ``portal.js`` polls them about once a
second while a long action runs, and stops when the workflow ends.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from fuyun.portal.rendering import PortalRoute, render
from fuyun.portal.session import Reader, context
from fuyun.services import audit
from fuyun.services.views import workflows
from fuyun.store.types import utcnow

router = APIRouter(route_class=PortalRoute)
PAGE = 50
WORKFLOW_STATES = ("pending", "running", "succeeded", "rolling_back", "rolled_back", "failed")
# Without a page render time, a long action's workflow is looked for this far back.
RECENT_S = 600


@router.get("/audit")
def audit_log(
    request: Request, visitor: Reader, action: str = "", object_type: str = "", cursor: str = ""
) -> Response:
    ctx = context(request)
    page = audit.list_events(
        ctx.db,
        visitor.principal,
        action=action.strip() or None,
        object_type=object_type.strip() or None,
        limit=PAGE,
        cursor=cursor or None,
    )
    return render(request, "audit.html", page=page, action=action, object_type=object_type)


@router.get("/workflows")
def workflow_list(
    request: Request, visitor: Reader, state: str = "", kind: str = "", cursor: str = ""
) -> Response:
    page = workflows.list_workflows(
        context(request).db,
        visitor.principal,
        state=state or None,
        kind=kind.strip() or None,
        limit=PAGE,
        cursor=cursor or None,
    )
    return render(
        request, "workflows.html", page=page, state=state, kind=kind, states=WORKFLOW_STATES
    )


@router.get("/workflows/{workflow_id}")
def workflow_detail(request: Request, visitor: Reader, workflow_id: uuid.UUID) -> Response:
    wf, steps = workflows.get_workflow(context(request).db, visitor.principal, workflow_id)
    row = workflows.row_of(wf, steps)
    return render(request, "workflow.html", wf=wf, steps=steps, done=row.done)


def _json(body: object) -> JSONResponse:
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _row(row: workflows.WorkflowRow) -> dict[str, object]:
    wf = row.workflow
    return {
        "id": str(wf.id),
        "kind": wf.kind,
        "state": wf.state,
        "done": row.done,
        "total": row.total,
        "current": row.current,
        "error": wf.error,
        "url": f"/workflows/{wf.id}",
    }


def _since(raw: str) -> datetime:
    """The page's render time (server clock), or the last few minutes if absent or bad."""
    try:
        since = datetime.fromisoformat(raw)
        if since.tzinfo is not None:
            return since
    except ValueError:
        pass
    return utcnow() - timedelta(seconds=RECENT_S)


@router.get("/ui/workflows.json")
def workflows_json(
    request: Request,
    visitor: Reader,
    kind: str = "",
    subject: str = "",
    state: str = "",
    since: str = "",
) -> Response:
    page = workflows.list_workflows(
        context(request).db,
        visitor.principal,
        kind=kind or None,
        subject=subject or None,
        state=state or None,
        since=_since(since),
        limit=5,
    )
    return _json({"items": [_row(r) for r in page.items]})


@router.get("/ui/workflows/{workflow_id}.json")
def workflow_json(request: Request, visitor: Reader, workflow_id: uuid.UUID) -> Response:
    wf, steps = workflows.get_workflow(context(request).db, visitor.principal, workflow_id)
    row = workflows.row_of(wf, steps)
    return _json({**_row(row), "steps": [{"name": s.name, "state": s.state} for s in steps]})
