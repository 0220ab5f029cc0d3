"""Stored runs of whole-fabric reports, and how stale the latest one is.

Verification and capacity planning read the whole fabric and take seconds; the
console shows the latest stored run instead of recomputing it on every page load.
Each run records its ``basis`` — a small fingerprint of the state it was computed
from (e.g. compiled generations) — so a reader can tell whether that state changed
since, without recomputing anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fuyun.services import audit
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import StoredReport
from fuyun.store.types import utcnow

#: Runs kept per kind: older ones are deleted when a new one is stored. Each holds a
#: whole-fabric document (every finding of a verification), so keeping all would grow
#: the store by megabytes per click while only the newest is ever read.
KEEP_RUNS = 20

#: The basis the state has now, given the stored one (which says what it was read from).
Basis = Callable[[Session, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Run:
    """A stored run as readers see it, with the basis the state has now."""

    id: uuid.UUID
    kind: str
    created_at: datetime
    created_by: str
    basis: dict[str, Any]
    current_basis: dict[str, Any]
    parameters: dict[str, Any]
    summary: dict[str, Any]
    document: dict[str, Any]
    seconds: float

    @property
    def stale(self) -> bool:
        """Whether the state the run was computed from has changed since."""
        return self.basis != self.current_basis

    @property
    def age_seconds(self) -> float:
        return max(0.0, (utcnow() - self.created_at).total_seconds())


def save(
    db: Database,
    principal: Principal,
    kind: str,
    *,
    basis: dict[str, Any],
    parameters: dict[str, Any],
    summary: dict[str, Any],
    document: dict[str, Any],
    seconds: float,
) -> Run:
    """Store one run, audited as ``<kind>.run``."""
    with audit.mutation(db, principal, f"{kind}.run", "report") as scope:
        row = StoredReport(
            kind=kind,
            created_by=principal.username[:64],
            created_by_id=principal.user_id,
            basis=basis,
            parameters=parameters,
            summary=summary,
            document=document,
            seconds=round(seconds, 3),
        )
        scope.session.add(row)
        scope.session.flush()
        kept = (
            select(StoredReport.id)
            .where(StoredReport.kind == kind)
            .order_by(StoredReport.created_at.desc(), StoredReport.id.desc())
            .limit(KEEP_RUNS)
        )
        scope.session.execute(
            delete(StoredReport).where(
                StoredReport.kind == kind, StoredReport.id.not_in(kept.scalar_subquery())
            )
        )
        scope.object_id = str(row.id)
        scope.detail = {"kind": kind, **summary}
        return _run(row, basis)


def latest(db: Database, principal: Principal, kind: str, basis: Basis) -> Run | None:
    """The newest stored run of ``kind`` (operators), or ``None`` if none was stored."""
    principal.require_operator()
    with db.read_session() as s:
        row = s.scalars(
            select(StoredReport)
            .where(StoredReport.kind == kind)
            .order_by(StoredReport.created_at.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return _run(row, basis(s, dict(row.basis)))


def _run(row: StoredReport, current: dict[str, Any]) -> Run:
    return Run(
        id=row.id,
        kind=row.kind,
        created_at=row.created_at,
        created_by=row.created_by,
        basis=dict(row.basis),
        current_basis=current,
        parameters=dict(row.parameters),
        summary=dict(row.summary),
        document=dict(row.document),
        seconds=row.seconds,
    )


def age_text(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h``, ``2 d``: how long ago, for people."""
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min"
    if seconds < 36 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"
