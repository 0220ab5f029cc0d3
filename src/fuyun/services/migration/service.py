"""The migration use cases: plan a move, make it, see past ones — operators only.

A move is planned first (refused with every reason when it cannot keep the VM's
addresses), then run as the ``vm.migrate`` workflow; both outcomes are audited.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from fuyun.domain.enums import AuditResult
from fuyun.domain.errors import Conflict, FuyunError, NotFound
from fuyun.domain.vm_states import VmState
from fuyun.scheduler.model import Demand
from fuyun.services.audit import record
from fuyun.services.migration.plan import MigrationPlan, Target, plan_move
from fuyun.services.migration.workflow import KIND
from fuyun.services.principal import Principal
from fuyun.store.models import Vm, Workflow, WorkflowStep


@dataclass
class MoveResult:
    plan: MigrationPlan
    workflow_id: uuid.UUID
    state: str
    stats: dict[str, Any] = field(default_factory=dict)
    error: FuyunError | None = None


def _vm(s: Any, principal: Principal, vm_id: uuid.UUID) -> Vm:
    vm = s.get(Vm, vm_id)
    if (
        vm is None
        or vm.state == VmState.DELETED.value
        or not principal.may_see_tenant(vm.tenant_id)
    ):
        raise NotFound("no such VM", field="vm_id")
    return vm


def plan(
    rt: Any,
    principal: Principal,
    vm_id: uuid.UUID,
    target: Target,
    *,
    demand: Demand | None = None,
) -> MigrationPlan:
    """Whether the VM can move (to the host, or within the scope) keeping its addresses."""
    principal.require_operator()
    with rt.db.read_session() as s:
        return plan_move(rt, s, _vm(s, principal, vm_id), target, demand=demand)


def migrate(
    rt: Any,
    principal: Principal,
    vm_id: uuid.UUID,
    target: Target,
    *,
    max_downtime_ms: int = 300,
    demand: Demand | None = None,
    raise_error: bool = True,
) -> MoveResult:
    """Plan and move one VM; refused (409 ``infeasible``) with the plan's reasons.

    ``raise_error=False`` answers a move whose workflow failed (rolled back) as a result
    carrying the error instead of raising it; a refusal comes before any workflow exists
    and is always raised.
    """
    principal.require_operator()
    return move(
        rt,
        principal,
        vm_id,
        target,
        max_downtime_ms=max_downtime_ms,
        demand=demand,
        raise_error=raise_error,
    )


def move(
    rt: Any,
    principal: Principal,
    vm_id: uuid.UUID,
    target: Target,
    *,
    max_downtime_ms: int = 300,
    demand: Demand | None = None,
    raise_error: bool = True,
) -> MoveResult:
    """:func:`migrate` on behalf of another use case (a resize that no longer fits),
    which has already decided the caller may have the VM moved."""
    chosen, payload = _planned(rt, principal, vm_id, target, max_downtime_ms, demand)
    outcome = rt.engine.execute(
        KIND,
        payload,
        tenant_id=uuid.UUID(chosen.tenant_id),
        actor=principal.username,
        subject=str(vm_id),
    )
    return _finished(rt, principal, vm_id, chosen, outcome, raise_error=raise_error)


def start(
    rt: Any,
    principal: Principal,
    vm_id: uuid.UUID,
    target: Target,
    *,
    max_downtime_ms: int = 300,
) -> MoveResult:
    """Plan the move and start it without waiting: answers the workflow (``running``) at
    once; the move goes on in a thread of this process (or a workflow worker's, in queue
    mode) and is audited when it ends. Follow it at ``/migrations/{workflow_id}``."""
    principal.require_operator()
    chosen, payload = _planned(rt, principal, vm_id, target, max_downtime_ms, None)
    tenant_id = uuid.UUID(chosen.tenant_id)
    queued = rt.engine.queue
    wf_id = rt.engine.start(
        KIND,
        payload,
        tenant_id=tenant_id,
        actor=principal.username,
        subject=str(vm_id),
        lease=not queued,
    )

    def finish() -> None:
        outcome = rt.engine.wait(wf_id) if queued else rt.engine.run(wf_id)
        _finished(rt, principal, vm_id, chosen, outcome, raise_error=False)

    threading.Thread(target=finish, name=f"fuyun-migrate-{vm_id}", daemon=True).start()
    return MoveResult(chosen, wf_id, "running")


def _planned(
    rt: Any,
    principal: Principal,
    vm_id: uuid.UUID,
    target: Target,
    max_downtime_ms: int,
    demand: Demand | None,
) -> tuple[MigrationPlan, dict[str, Any]]:
    """The plan of a feasible move and its workflow's payload; refused (and audited) else."""
    try:
        with rt.db.read_session() as s:
            chosen = plan_move(rt, s, _vm(s, principal, vm_id), target, demand=demand)
        if not chosen.feasible:
            raise Conflict(
                f"VM {chosen.vm} cannot move keeping its addresses: " + "; ".join(chosen.reasons),
                field="to",
                code="infeasible",
            )
    except FuyunError as exc:
        _audit(
            rt,
            principal,
            vm_id,
            None,
            AuditResult.FAILURE,
            {"error": exc.code, "message": exc.message},
        )
        raise
    assert chosen.target_host_id is not None
    payload = {
        "vm_id": str(vm_id),
        "target_host_id": chosen.target_host_id,
        "target": chosen.target_host,
        "scope": chosen.scope,
        "max_downtime_ms": max_downtime_ms,
    }
    return chosen, payload


def _finished(
    rt: Any,
    principal: Principal,
    vm_id: uuid.UUID,
    chosen: MigrationPlan,
    outcome: Any,
    *,
    raise_error: bool,
) -> MoveResult:
    detail: dict[str, Any] = {
        "workflow_id": str(outcome.id),
        "from": chosen.source_host,
        "to": chosen.target_host,
        "scope": chosen.scope,
    }
    result = MoveResult(chosen, outcome.id, outcome.state, dict(outcome.data.get("stats", {})))
    if outcome.error is not None:
        result.error = outcome.error
        detail.update(error=outcome.error.code, message=outcome.error.message)
        _audit(rt, principal, vm_id, chosen.tenant_id, AuditResult.FAILURE, detail)
        if raise_error:
            raise outcome.error
        return result
    _audit(rt, principal, vm_id, chosen.tenant_id, AuditResult.SUCCESS, detail)
    return result


def _audit(
    rt: Any,
    principal: Principal,
    vm_id: uuid.UUID,
    tenant_id: str | None,
    result: AuditResult,
    detail: dict[str, Any],
) -> None:
    record(
        rt.db,
        principal,
        "vm.migrate",
        "vm",
        tenant_id=uuid.UUID(tenant_id) if tenant_id else None,
        object_id=str(vm_id),
        result=result,
        detail=detail,
    )


@dataclass(frozen=True)
class MigrationView:
    """One move as history shows it: its workflow's state and where each step stands."""

    id: uuid.UUID
    vm_id: str
    state: str
    target: str | None
    scope: str | None
    error: str | None
    steps: list[tuple[str, str]]
    created_at: Any
    data: dict[str, Any]

    @property
    def progress(self) -> float:
        done = sum(1 for _, st in self.steps if st == "done")
        return done / len(self.steps) if self.steps else 0.0


def get_migration(rt: Any, principal: Principal, workflow_id: uuid.UUID) -> MigrationView:
    """One move by its workflow id (404 when there is none)."""
    found = list_migrations(rt, principal, workflow_id=workflow_id, limit=1)
    if not found:
        raise NotFound("no such migration", field="workflow_id")
    return found[0]


def list_migrations(
    rt: Any,
    principal: Principal,
    *,
    vm_id: uuid.UUID | None = None,
    workflow_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[MigrationView]:
    principal.require_operator()
    with rt.db.read_session() as s:
        stmt = select(Workflow).where(Workflow.kind == KIND)
        if vm_id is not None:
            stmt = stmt.where(Workflow.subject == str(vm_id))
        if workflow_id is not None:
            stmt = stmt.where(Workflow.id == workflow_id)
        rows = list(s.scalars(stmt.order_by(Workflow.created_at.desc()).limit(limit)))
        steps: dict[uuid.UUID, list[tuple[str, str]]] = {}
        for st in s.scalars(
            select(WorkflowStep)
            .where(WorkflowStep.workflow_id.in_([w.id for w in rows]))
            .order_by(WorkflowStep.index)
        ):
            steps.setdefault(st.workflow_id, []).append((st.name, st.state))
        return [
            MigrationView(
                w.id,
                str(w.payload.get("vm_id")),
                w.state,
                w.payload.get("target"),
                w.payload.get("scope"),
                w.error,
                steps.get(w.id, []),
                w.created_at,
                dict(w.data or {}),
            )
            for w in rows
        ]
