"""Stored report runs: the newest one is read back, and a changed basis makes it stale."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from fuyun.domain.enums import Role
from fuyun.domain.errors import Forbidden
from fuyun.services import reports
from fuyun.services.principal import SYSTEM, Principal
from fuyun.store.engine import Database
from fuyun.store.models import AuditEvent

VIEWER = Principal(user_id=None, username="v", role=Role.VIEWER, tenant_id=None)


def _save(db: Database, generations: int, ok: bool) -> reports.Run:
    return reports.save(
        db,
        SYSTEM,
        "verify",
        basis={"generations": generations},
        parameters={"limit": 5},
        summary={"ok": ok},
        document={"ok": ok, "findings": [1, 2]},
        seconds=1.23456,
    )


def test_latest_run_is_read_back_with_staleness_and_audited(db: Database) -> None:
    state: dict[str, Any] = {"generations": 7}

    def basis(_s: object, _stored: dict[str, Any]) -> dict[str, Any]:
        return dict(state)

    assert reports.latest(db, SYSTEM, "verify", basis) is None
    _save(db, 3, ok=False)
    newest = _save(db, 7, ok=True)
    assert reports.latest(db, SYSTEM, "plan", basis) is None  # kinds are apart

    run = reports.latest(db, SYSTEM, "verify", basis)
    assert run is not None and run.id == newest.id
    assert run.summary == {"ok": True} and run.document["findings"] == [1, 2]
    assert run.parameters == {"limit": 5} and run.seconds == pytest.approx(1.235)
    assert run.created_by == "system" and not run.stale
    assert 0 <= run.age_seconds < 600

    state["generations"] = 8  # something was recompiled since
    again = reports.latest(db, SYSTEM, "verify", basis)
    assert again is not None and again.stale and again.current_basis == {"generations": 8}

    with db.read_session() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "verify.run")))
    assert len(events) == 2 and events[-1].object_type == "report"


def test_only_operators_read_stored_runs(db: Database) -> None:
    with pytest.raises(Forbidden):
        reports.latest(db, VIEWER, "verify", lambda _s, _b: {})


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5 s"), (600, "10 min"), (7200, "2 h"), (3 * 86400, "3 d")]
)
def test_age_text(seconds: float, text: str) -> None:
    assert reports.age_text(seconds) == text


def test_only_the_newest_runs_of_a_kind_are_kept(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fuyun.store.models import StoredReport

    monkeypatch.setattr(reports, "KEEP_RUNS", 3)
    saved = [_save(db, n, ok=True) for n in range(5)]
    reports.save(db, SYSTEM, "plan", basis={}, parameters={}, summary={}, document={}, seconds=0.1)
    with db.read_session() as s:
        left = set(s.scalars(select(StoredReport.id).where(StoredReport.kind == "verify")))
        plans = list(s.scalars(select(StoredReport.id).where(StoredReport.kind == "plan")))
    assert left == {r.id for r in saved[-3:]}
    assert len(plans) == 1  # another kind's runs are not counted against this one
