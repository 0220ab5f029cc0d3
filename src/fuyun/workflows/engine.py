"""A persisted step engine: every step is recorded before it runs; failure undoes in reverse.

Contract of a step:

- ``run(ctx)`` does its work; a step that touches only the store does it in
  ``ctx.session``, the same transaction that marks the step done, so it is done
  exactly once. A step with outside effects (a hypervisor) must be idempotent:
  after a crash it may run again.
- ``undo(ctx)`` reverses ``run`` and is idempotent too; it runs in its own
  transaction, which also marks the step undone.
- ``ctx.data`` is the workflow's shared JSON state, saved with every step.

A crash leaves the workflow ``running`` with a lease that stops being renewed.
:meth:`Engine.recover` takes such workflows over: it resumes them (the step that
was running is run again) when the workflow kind says so, or rolls back the steps
that were done.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from fuyun.domain.errors import Conflict, FuyunError
from fuyun.store.engine import Database
from fuyun.store.models import Workflow, WorkflowStep
from fuyun.store.types import utcnow

log = logging.getLogger("fuyun.workflows")

LEASE_S = 30


@dataclass
class StepContext:
    session: Session
    workflow_id: uuid.UUID
    payload: dict[str, Any]
    data: dict[str, Any]
    services: Any


@dataclass(frozen=True)
class StepDef:
    name: str
    run: Callable[[StepContext], None]
    undo: Callable[[StepContext], None] | None = None


@dataclass(frozen=True)
class WorkflowDef:
    kind: str
    steps: tuple[StepDef, ...]
    # After a crash: run the interrupted step again ("resume") or undo ("rollback").
    on_crash: str = "resume"


@dataclass
class Outcome:
    id: uuid.UUID
    state: str
    data: dict[str, Any] = field(default_factory=dict)
    error: FuyunError | None = None


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Engine:
    def __init__(
        self, db: Database, services: Any, *, owner: str | None = None, lease_s: int = LEASE_S
    ):
        self.db = db
        self.services = services
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self.kinds: dict[str, WorkflowDef] = {}
        # Test hook: called with (workflow id, step name) just before a step runs.
        self.before_step: Callable[[uuid.UUID, str], None] | None = None

    def register(self, definition: WorkflowDef) -> None:
        self.kinds[definition.kind] = definition

    # -- starting -------------------------------------------------------------------

    def start(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant_id: uuid.UUID | None,
        actor: str,
        subject: str | None = None,
        lease: bool = True,
    ) -> uuid.UUID:
        """Record a workflow and all its steps (pending) in one transaction."""
        definition = self.kinds[kind]
        with self.db.write_session() as s:
            wf = Workflow(
                kind=kind,
                state="pending",
                tenant_id=tenant_id,
                actor=actor,
                subject=subject,
                payload=payload,
                data={},
            )
            if lease:
                wf.state, wf.lease_owner = "running", self.owner
                wf.lease_expires_at = utcnow() + timedelta(seconds=self.lease_s)
            s.add(wf)
            s.flush()
            s.add_all(
                WorkflowStep(workflow_id=wf.id, index=i, name=st.name, state="pending")
                for i, st in enumerate(definition.steps)
            )
            return wf.id

    def execute(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        tenant_id: uuid.UUID | None,
        actor: str,
        subject: str | None = None,
    ) -> Outcome:
        """Start and run to the end in this process; failure comes back rolled back."""
        wf_id = self.start(kind, payload, tenant_id=tenant_id, actor=actor, subject=subject)
        return self.run(wf_id)

    # -- running --------------------------------------------------------------------

    def _renew(self, s: Session, wf_id: uuid.UUID) -> None:
        result = s.execute(
            update(Workflow)
            .where(Workflow.id == wf_id, Workflow.lease_owner == self.owner)
            .values(
                lease_expires_at=utcnow() + timedelta(seconds=self.lease_s), updated_at=utcnow()
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("lost the workflow's lease to another worker", code="lease_lost")

    def run(self, wf_id: uuid.UUID) -> Outcome:
        """Run the pending steps of a workflow this engine holds the lease of."""
        with self.db.read_session() as s:
            wf = s.get(Workflow, wf_id)
            assert wf is not None
            definition = self.kinds[wf.kind]
            payload, data = dict(wf.payload), dict(wf.data or {})
            steps = list(
                s.scalars(
                    select(WorkflowStep)
                    .where(WorkflowStep.workflow_id == wf_id)
                    .order_by(WorkflowStep.index)
                )
            )
        for step_row, step in zip(steps, definition.steps, strict=True):
            if step_row.state == "done":
                continue
            try:
                data = self._run_step(wf_id, step_row.id, step, payload, data)
            except FuyunError as exc:
                self._mark_step(step_row.id, "failed", str(exc.message))
                log.info("workflow %s step %s failed: %s", wf_id, step.name, exc.message)
                self.rollback(wf_id, error=exc)
                return Outcome(wf_id, "rolled_back", data, exc)
            except Exception as exc:
                self._mark_step(step_row.id, "failed", repr(exc)[:2000])
                log.exception("workflow %s step %s crashed", wf_id, step.name)
                self.rollback(wf_id, error=FuyunError(f"internal error in step {step.name}"))
                raise
        with self.db.write_session() as s:
            s.execute(
                update(Workflow)
                .where(Workflow.id == wf_id)
                .values(
                    state="succeeded", lease_owner=None, lease_expires_at=None, updated_at=utcnow()
                )
            )
        return Outcome(wf_id, "succeeded", data)

    def _run_step(
        self,
        wf_id: uuid.UUID,
        step_id: uuid.UUID,
        step: StepDef,
        payload: dict[str, Any],
        data: dict[str, Any],
    ) -> dict[str, Any]:
        with self.db.write_session() as s:
            self._renew(s, wf_id)
            s.execute(
                update(WorkflowStep)
                .where(WorkflowStep.id == step_id)
                .values(state="running", started_at=utcnow())
            )
        if self.before_step is not None:
            self.before_step(wf_id, step.name)
        with self.db.write_session() as s:
            ctx = StepContext(s, wf_id, payload, dict(data), self.services)
            step.run(ctx)
            s.execute(
                update(WorkflowStep)
                .where(WorkflowStep.id == step_id)
                .values(state="done", finished_at=utcnow(), error=None)
            )
            s.execute(update(Workflow).where(Workflow.id == wf_id).values(data=ctx.data))
            return ctx.data

    def _mark_step(self, step_id: uuid.UUID, state: str, error: str | None = None) -> None:
        with self.db.write_session() as s:
            s.execute(
                update(WorkflowStep)
                .where(WorkflowStep.id == step_id)
                .values(state=state, finished_at=utcnow(), error=error)
            )

    def rollback(self, wf_id: uuid.UUID, *, error: FuyunError | None = None) -> None:
        """Undo the done (and interrupted) steps in reverse, each in its own transaction."""
        with self.db.write_session() as s:
            wf = s.get(Workflow, wf_id)
            assert wf is not None
            wf.state = "rolling_back"
            if error is not None:
                wf.error = f"{error.code}: {error.message}"[:2000]
            definition = self.kinds[wf.kind]
            payload, data = dict(wf.payload), dict(wf.data or {})
            steps = list(
                s.scalars(
                    select(WorkflowStep)
                    .where(WorkflowStep.workflow_id == wf_id)
                    .order_by(WorkflowStep.index.desc())
                )
            )
        by_name = {st.name: st for st in definition.steps}
        for row in steps:
            if row.state not in ("done", "running", "undoing", "failed"):
                continue
            step = by_name[row.name]
            # Done, interrupted and failed steps are all undone: a failed step with
            # outside effects (3 of 5 instances booted) may have left some behind, and
            # undo is idempotent, so one that left nothing costs nothing.
            with self.db.write_session() as s:
                if step.undo is not None:
                    step.undo(StepContext(s, wf_id, payload, data, self.services))
                s.execute(
                    update(WorkflowStep)
                    .where(WorkflowStep.id == row.id)
                    .values(state="undone", finished_at=utcnow())
                )
        with self.db.write_session() as s:
            s.execute(
                update(Workflow)
                .where(Workflow.id == wf_id)
                .values(
                    state="rolled_back",
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=utcnow(),
                )
            )

    # -- recovery -------------------------------------------------------------------

    def claim_orphans(self, *, force: bool = False, limit: int = 100) -> list[uuid.UUID]:
        """Take over workflows whose lease expired (or all unfinished ones, with ``force``).

        ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several engines never take the same one.
        """
        now = utcnow()
        with self.db.write_session() as s:
            stmt = select(Workflow).where(
                Workflow.state.in_(("running", "rolling_back", "pending"))
            )
            if not force:
                stmt = stmt.where(
                    or_(Workflow.lease_expires_at.is_(None), Workflow.lease_expires_at < now)
                )
            rows = list(
                s.scalars(
                    stmt.order_by(Workflow.created_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            for wf in rows:
                wf.lease_owner = self.owner
                wf.lease_expires_at = now + timedelta(seconds=self.lease_s)
                wf.attempts += 1
            return [wf.id for wf in rows]

    def recover(self, *, force: bool = False) -> list[Outcome]:
        """Resume or roll back every orphaned workflow; returns what became of each."""
        outcomes = []
        for wf_id in self.claim_orphans(force=force):
            with self.db.read_session() as s:
                wf = s.get(Workflow, wf_id)
                assert wf is not None
                state, kind = wf.state, wf.kind
            definition = self.kinds.get(kind)
            if definition is None:
                log.error("workflow %s of unknown kind %s left alone", wf_id, kind)
                continue
            if state == "rolling_back" or definition.on_crash == "rollback":
                self.rollback(
                    wf_id, error=FuyunError("the controller stopped mid-way", code="interrupted")
                )
                outcomes.append(Outcome(wf_id, "rolled_back"))
            else:
                outcomes.append(self.run(wf_id))
        return outcomes
