"""The step engine's bookkeeping: what it records, in how many commits, and what a
resumed workflow does with a step recorded as running."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from fuyun.store.engine import Database
from fuyun.store.models import Workflow, WorkflowStep
from fuyun.workflows.engine import Engine, StepContext, StepDef, WorkflowDef


@contextmanager
def _commits(db: Database) -> Iterator[list[int]]:
    seen = [0]

    def count(*_: object) -> None:
        seen[0] += 1

    event.listen(db.engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "commit", count)


def _three_steps(ran: list[str]) -> WorkflowDef:
    def step(name: str) -> StepDef:
        def run(ctx: StepContext) -> None:
            ran.append(name)
            ctx.data[name] = True

        return StepDef(name, run)

    return WorkflowDef("test.three", (step("a"), step("b"), step("c")))


def _states(db: Database, wf_id: uuid.UUID) -> tuple[str, list[str]]:
    with db.read_session() as s:
        wf = s.get_one(Workflow, wf_id)
        steps = s.scalars(
            select(WorkflowStep.state)
            .where(WorkflowStep.workflow_id == wf_id)
            .order_by(WorkflowStep.index)
        )
        return wf.state, list(steps)


def test_a_workflow_of_n_steps_costs_n_plus_two_commits(db: Database) -> None:
    ran: list[str] = []
    engine = Engine(db, services=None)
    engine.register(_three_steps(ran))
    with _commits(db) as commits:
        outcome = engine.execute("test.three", {}, tenant_id=None, actor="t")
    assert outcome.state == "succeeded" and ran == ["a", "b", "c"]
    assert outcome.data == {"a": True, "b": True, "c": True}
    assert commits[0] == 3 + 2
    assert _states(db, outcome.id) == ("succeeded", ["done", "done", "done"])


def test_each_step_is_recorded_as_running_before_it_runs(db: Database) -> None:
    ran: list[str] = []
    engine = Engine(db, services=None)
    engine.register(_three_steps(ran))
    seen: list[tuple[str, list[str]]] = []
    engine.before_step = lambda wf_id, name: seen.append((name, _states(db, wf_id)[1]))
    engine.execute("test.three", {}, tenant_id=None, actor="t")
    assert seen == [
        ("a", ["running", "pending", "pending"]),
        ("b", ["done", "running", "pending"]),
        ("c", ["done", "done", "running"]),
    ]


def test_a_resumed_workflow_runs_the_interrupted_step_again_and_only_what_follows(
    db: Database,
) -> None:
    ran: list[str] = []
    engine = Engine(db, services=None)
    engine.register(_three_steps(ran))

    class Crash(BaseException):
        """Leaves the process's state as a kill would: nothing more is recorded."""

    def crash(_: uuid.UUID, name: str) -> None:
        if name == "b":
            raise Crash

    engine.before_step = crash
    wf_id = engine.start("test.three", {}, tenant_id=None, actor="t")
    with pytest.raises(Crash):
        engine.run(wf_id)
    assert _states(db, wf_id) == ("running", ["done", "running", "pending"])
    engine.before_step = None
    ran.clear()
    (outcome,) = engine.recover(force=True)
    assert outcome.state == "succeeded" and ran == ["b", "c"]
    assert _states(db, wf_id) == ("succeeded", ["done", "done", "done"])
