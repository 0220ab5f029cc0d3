"""Workflows with progress: newest first, paged, tenant-scoped, two queries per page."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event

from fuyun.domain.enums import Role
from fuyun.domain.errors import NotFound
from fuyun.services.principal import SYSTEM, Principal
from fuyun.services.views import workflows
from fuyun.store.engine import Database
from fuyun.store.models import Tenant, Workflow, WorkflowStep
from fuyun.store.types import utcnow

STEPS = ("reserve", "create", "plug", "verify")


def _seed(db: Database) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID]]:
    """Two tenants; five workflows of the first at different points, one of the second."""
    now = utcnow()
    ids = []
    with db.write_session() as s:
        mine, theirs = Tenant(name="studio"), Tenant(name="rival")
        s.add_all([mine, theirs])
        s.flush()
        for n in range(6):
            owner = mine if n < 5 else theirs
            wf = Workflow(
                kind="vm.create", state="running", tenant_id=owner.id, subject=f"vm-{n}",
                created_at=now - timedelta(minutes=10 - n),
            )  # fmt: skip
            s.add(wf)
            s.flush()
            for i, name in enumerate(STEPS):
                state = "done" if i < n % 4 else ("running" if i == n % 4 else "pending")
                s.add(WorkflowStep(workflow_id=wf.id, index=i, name=name, state=state))
            ids.append(wf.id)
        return mine.id, theirs.id, ids


def test_pages_newest_first_with_progress_and_only_the_callers_tenant(db: Database) -> None:
    mine, _theirs, ids = _seed(db)
    partner = Principal(uuid.uuid4(), "studio-admin", Role.TENANT_ADMIN, mine)
    first = workflows.list_workflows(db, partner, limit=3)
    assert [r.workflow.id for r in first.items] == [ids[4], ids[3], ids[2]]
    assert [(r.done, r.total, r.current) for r in first.items] == [
        (0, 4, "reserve"),
        (3, 4, "verify"),
        (2, 4, "plug"),
    ]
    rest = workflows.list_workflows(db, partner, limit=3, cursor=first.next_cursor)
    assert [r.workflow.id for r in rest.items] == [ids[1], ids[0]] and rest.next_cursor is None
    assert [r.workflow.id for r in workflows.list_workflows(db, partner, subject="vm-1").items] == [
        ids[1]
    ]
    everyone = workflows.list_workflows(db, SYSTEM, limit=100)
    assert len(everyone.items) == 6


def test_another_tenants_workflow_is_not_found(db: Database) -> None:
    mine, _theirs, ids = _seed(db)
    partner = Principal(uuid.uuid4(), "studio-admin", Role.TENANT_ADMIN, mine)
    wf, steps = workflows.get_workflow(db, partner, ids[3])
    row = workflows.row_of(wf, steps)
    assert [s.name for s in steps] == list(STEPS) and (row.done, row.current) == (3, "verify")
    with pytest.raises(NotFound):
        workflows.get_workflow(db, partner, ids[5])
    with pytest.raises(NotFound):
        workflows.get_workflow(db, partner, uuid.uuid4())


def test_a_page_costs_two_queries_whatever_its_length(db: Database) -> None:
    _seed(db)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    workflows.list_workflows(db, SYSTEM, limit=100)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects
