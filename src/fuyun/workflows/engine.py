"""A persisted step engine: every step is recorded before it runs; failure undoes in reverse.

A workflow of n steps costs n + 2 commits: its creation, its start (which records
the first step as running), and one per step (which records the step done and the
next one running, or the workflow succeeded).

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

Leases fence every write: the transaction that records a step as done also checks
that this engine still holds the workflow's lease, so a worker that was presumed dead
(and whose workflow another worker took over) cannot commit anything afterwards. A
heartbeat thread renews the leases of the workflows an engine is running, so a long
step does not lose its lease; only a dead (or frozen) process does.

Two ways to run: ``inline`` (the caller's process runs the workflow, the single-node
default) and ``queue`` (the caller records the workflow as pending and waits for its
end while ``fuyun worker`` processes claim and run it; see :mod:`fuyun.workflows.worker`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from fuyun.domain.errors import Conflict, FuyunError
from fuyun.store.engine import Database
from fuyun.store.models import Workflow, WorkflowStep
from fuyun.store.types import utcnow
from fuyun.workflows import metrics

log = logging.getLogger("fuyun.workflows")

LEASE_S = 30
FINISHED = ("succeeded", "rolled_back", "failed")


class LeaseLost(Conflict):
    """This engine no longer holds the workflow: another one took it over; stop touching it."""

    code = "lease_lost"


class WorkflowTimeout(FuyunError):
    """The workflow is still running when the caller stopped waiting; it carries on."""

    status = 504
    code = "workflow_timeout"


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
        self,
        db: Database,
        services: Any,
        *,
        owner: str | None = None,
        lease_s: int = LEASE_S,
        queue: bool = False,
        wait_s: float = 300.0,
    ):
        self.db = db
        self.services = services
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        # queue: execute() only records the workflow and waits for a worker to finish it.
        self.queue = queue
        self.wait_s = wait_s
        self.kinds: dict[str, WorkflowDef] = {}
        # Test hook: called with (workflow id, step name) just before a step runs.
        self.before_step: Callable[[uuid.UUID, str], None] | None = None
        self._held: set[uuid.UUID] = set()
        self._held_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None

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
        """Run to the end (here, or by a worker in queue mode); failure comes back rolled back."""
        if self.queue:
            wf_id = self.start(
                kind, payload, tenant_id=tenant_id, actor=actor, subject=subject, lease=False
            )
            return self.wait(wf_id)
        wf_id = self.start(kind, payload, tenant_id=tenant_id, actor=actor, subject=subject)
        return self.run(wf_id)

    def wait(self, wf_id: uuid.UUID, timeout_s: float | None = None) -> Outcome:
        """Poll the store until the workflow has finished; its outcome as :meth:`run` gives it.

        Raises :class:`WorkflowTimeout` (the workflow goes on) after ``timeout_s``.
        """
        deadline = time.monotonic() + (self.wait_s if timeout_s is None else timeout_s)
        pause = 0.005
        while True:
            with self.db.read_session() as s:
                wf = s.get(Workflow, wf_id)
                assert wf is not None
                state, data = wf.state, dict(wf.data or {})
            if state in FINISHED:
                return Outcome(
                    wf_id, state, data, _error_of(data) if state != "succeeded" else None
                )
            if time.monotonic() >= deadline:
                raise WorkflowTimeout(
                    f"workflow {wf_id} is still {state}; follow it at /workflows/{wf_id}",
                    field="workflow_id",
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)

    # -- leases ---------------------------------------------------------------------

    def _hold(self, wf_id: uuid.UUID) -> None:
        with self._held_lock:
            self._held.add(wf_id)
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(
                    target=self._beat, name="fuyun-lease-heartbeat", daemon=True
                )
                self._heartbeat.start()

    def _release_hold(self, wf_id: uuid.UUID) -> None:
        with self._held_lock:
            self._held.discard(wf_id)

    def held(self) -> set[uuid.UUID]:
        with self._held_lock:
            return set(self._held)

    def _beat(self) -> None:
        """Renew the leases of every workflow this engine runs, every third of a lease.

        Ends when the engine holds nothing (the next :meth:`_hold` starts another), so an
        idle engine keeps no thread.
        """
        while True:
            time.sleep(max(self.lease_s / 3, 0.05))
            with self._held_lock:
                held = set(self._held)
                if not held:
                    self._heartbeat = None
                    return
            try:
                with self.db.write_session() as s:
                    s.execute(
                        update(Workflow)
                        .where(Workflow.id.in_(list(held)), Workflow.lease_owner == self.owner)
                        .values(lease_expires_at=utcnow() + timedelta(seconds=self.lease_s))
                    )
            except Exception:  # the next beat retries; a lost lease is caught by the fence
                log.exception("lease heartbeat failed")

    # -- running --------------------------------------------------------------------

    def _renew(self, s: Session, wf_id: uuid.UUID, **values: Any) -> None:
        """Extend the lease, fenced: raises :class:`LeaseLost` when it is no longer ours.

        ``values`` are written to the workflow row in the same ``UPDATE``.
        """
        result = s.execute(
            update(Workflow)
            .where(Workflow.id == wf_id, Workflow.lease_owner == self.owner)
            .values(
                {
                    "lease_expires_at": utcnow() + timedelta(seconds=self.lease_s),
                    "updated_at": utcnow(),
                    **values,
                }
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost("lost the workflow's lease to another worker")

    def run(self, wf_id: uuid.UUID) -> Outcome:
        """Run the pending steps of a workflow this engine holds the lease of.

        If the lease is lost on the way (this process was presumed dead), stop at once
        and touch nothing more: the new holder finishes the workflow.
        """
        self._hold(wf_id)
        try:
            return self._run(wf_id)
        except LeaseLost:
            log.warning("workflow %s taken over by another worker; left to it", wf_id)
            return Outcome(wf_id, "abandoned")
        finally:
            self._release_hold(wf_id)

    def _run(self, wf_id: uuid.UUID) -> Outcome:
        with self.db.write_session() as s:
            self._renew(s, wf_id)
            s.execute(
                update(Workflow)
                .where(Workflow.id == wf_id, Workflow.state == "pending")
                .values(state="running")
            )
            wf = s.get(Workflow, wf_id)
            assert wf is not None
            definition = self.kinds[wf.kind]
            kind, created_at = wf.kind, wf.created_at
            payload, data = dict(wf.payload), dict(wf.data or {})
            rows = s.execute(
                select(WorkflowStep.id, WorkflowStep.state)
                .where(WorkflowStep.workflow_id == wf_id)
                .order_by(WorkflowStep.index)
            ).all()
            todo = [
                (row.id, step)
                for row, step in zip(rows, definition.steps, strict=True)
                if row.state != "done"
            ]
            if todo:
                self._mark_running(s, todo[0][0])
        for i, (step_id, step) in enumerate(todo):
            following = todo[i + 1][0] if i + 1 < len(todo) else None
            try:
                data = self._run_step(wf_id, step_id, step, payload, data, following)
            except LeaseLost:
                raise
            except FuyunError as exc:
                metrics.STEP_FAILURES.labels(kind, step.name).inc()
                self._mark_step(step_id, "failed", str(exc.message))
                log.info("workflow %s step %s failed: %s", wf_id, step.name, exc.message)
                self._rollback(wf_id, error=exc)
                return Outcome(wf_id, "rolled_back", data, exc)
            except Exception as exc:
                metrics.STEP_FAILURES.labels(kind, step.name).inc()
                self._mark_step(step_id, "failed", repr(exc)[:2000])
                log.exception("workflow %s step %s crashed", wf_id, step.name)
                self._rollback(wf_id, error=FuyunError(f"internal error in step {step.name}"))
                raise
        if not todo:  # resumed with every step done: only the end was not recorded
            with self.db.write_session() as s:
                self._renew(s, wf_id, **self._SUCCEEDED)
        metrics.finished(kind, "succeeded", created_at)
        return Outcome(wf_id, "succeeded", data)

    def _run_step(
        self,
        wf_id: uuid.UUID,
        step_id: uuid.UUID,
        step: StepDef,
        payload: dict[str, Any],
        data: dict[str, Any],
        following: uuid.UUID | None,
    ) -> dict[str, Any]:
        """Run one step, already recorded as running; its transaction records it done and
        either the next step as running or, after the last, the workflow as succeeded.

        One commit per step: recording the next step as started is the same fact as this
        one being done, since nothing runs between them.
        """
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
            if following is not None:
                self._mark_running(s, following)
                ending: dict[str, Any] = {}
            else:
                ending = self._SUCCEEDED
            # The fence: commit only while the lease is still ours.
            self._renew(s, wf_id, data=ctx.data, **ending)
            return ctx.data

    # Written with the last fenced renewal: the lease ends with the workflow.
    _SUCCEEDED: ClassVar[dict[str, Any]] = {
        "state": "succeeded",
        "lease_owner": None,
        "lease_expires_at": None,
    }

    @staticmethod
    def _mark_running(s: Session, step_id: uuid.UUID) -> None:
        s.execute(
            update(WorkflowStep)
            .where(WorkflowStep.id == step_id)
            .values(state="running", started_at=utcnow())
        )

    def _mark_step(self, step_id: uuid.UUID, state: str, error: str | None = None) -> None:
        with self.db.write_session() as s:
            s.execute(
                update(WorkflowStep)
                .where(WorkflowStep.id == step_id)
                .values(state=state, finished_at=utcnow(), error=error)
            )

    def rollback(self, wf_id: uuid.UUID, *, error: FuyunError | None = None) -> None:
        """Undo the done (and interrupted) steps in reverse, each in its own transaction."""
        self._hold(wf_id)
        try:
            self._rollback(wf_id, error=error)
        except LeaseLost:
            log.warning("workflow %s taken over during rollback; left to it", wf_id)
        finally:
            self._release_hold(wf_id)

    def _rollback(self, wf_id: uuid.UUID, *, error: FuyunError | None = None) -> None:
        with self.db.write_session() as s:
            self._renew(s, wf_id)
            wf = s.get(Workflow, wf_id)
            assert wf is not None
            wf.state = "rolling_back"
            if error is not None:
                wf.error = f"{error.code}: {error.message}"[:2000]
                # Kept whole so that a caller waiting in another process re-raises it as is.
                wf.data = {
                    **(wf.data or {}),
                    "_error": {**error.as_dict(), "status": error.status},
                }
            definition = self.kinds[wf.kind]
            kind, created_at = wf.kind, wf.created_at
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
                self._renew(s, wf_id)
                s.execute(
                    update(WorkflowStep)
                    .where(WorkflowStep.id == row.id)
                    .values(state="undone", finished_at=utcnow())
                )
        with self.db.write_session() as s:
            self._renew(s, wf_id)
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
        metrics.finished(kind, "rolled_back", created_at)

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
                if wf.state != "pending" and wf.lease_owner not in (None, self.owner):
                    metrics.TAKEOVERS.inc()
                wf.lease_owner = self.owner
                wf.lease_expires_at = now + timedelta(seconds=self.lease_s)
                wf.attempts += 1
            return [wf.id for wf in rows]

    def recover(self, *, force: bool = False) -> list[Outcome]:
        """Resume or roll back every orphaned workflow; returns what became of each."""
        outcomes = []
        for wf_id in self.claim_orphans(force=force):
            outcome = self.drive(wf_id)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def drive(self, wf_id: uuid.UUID) -> Outcome | None:
        """Carry a claimed workflow to its end: run a pending one, resume or undo the rest."""
        with self.db.read_session() as s:
            wf = s.get(Workflow, wf_id)
            assert wf is not None
            state, kind = wf.state, wf.kind
        definition = self.kinds.get(kind)
        if definition is None:
            log.error("workflow %s of unknown kind %s left alone", wf_id, kind)
            return None
        if state == "rolling_back" or (state == "running" and definition.on_crash == "rollback"):
            self.rollback(
                wf_id, error=FuyunError("the controller stopped mid-way", code="interrupted")
            )
            return Outcome(wf_id, "rolled_back")
        return self.run(wf_id)


def _error_of(data: dict[str, Any]) -> FuyunError:
    """The error a workflow rolled back with, rebuilt with its code, field and HTTP status."""
    saved = data.get("_error") or {}
    error = FuyunError(
        str(saved.get("message") or "the workflow was rolled back"),
        field=saved.get("field"),
        code=str(saved.get("code") or "rolled_back"),
    )
    error.status = int(saved.get("status") or 409)
    return error
