"""Recording mutations in the audit log, and reading it back with tenant scoping.

:func:`mutation` is the one way services change state: it opens the write
transaction, and writes the audit event in that same transaction on success, so a
change and its record are committed together or not at all. A refused or failed
change is recorded too, in a transaction of its own after the rollback.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.domain.enums import AuditResult
from fuyun.domain.errors import FuyunError
from fuyun.services.pagination import Page, paginate
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import AuditEvent


@dataclass
class MutationScope:
    """What a service fills in while it mutates, for the audit event."""

    session: Session
    object_id: str | None = None
    tenant_id: uuid.UUID | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@contextmanager
def mutation(
    db: Database,
    principal: Principal,
    action: str,
    object_type: str,
    *,
    object_id: object | None = None,
    tenant_id: uuid.UUID | None = None,
    dry_run: bool = False,
) -> Iterator[MutationScope]:
    """One audited transaction: commit with a success event, or roll back and log failure.

    With ``dry_run`` the whole change runs and is rolled back, unaudited: the
    caller must build its answer inside the block.
    """
    if dry_run:
        with db.scratch_session() as session:
            yield MutationScope(session=session, tenant_id=tenant_id or principal.tenant_id)
        return
    scope: MutationScope | None = None
    try:
        with db.write_session() as session:
            scope = MutationScope(
                session=session,
                object_id=None if object_id is None else str(object_id),
                tenant_id=tenant_id if tenant_id is not None else principal.tenant_id,
            )
            yield scope
            session.add(_event(principal, action, object_type, scope, AuditResult.SUCCESS))
    except FuyunError as exc:
        failed = scope or MutationScope(session=None)  # type: ignore[arg-type]
        failed.detail = {**failed.detail, "error": exc.code, "message": exc.message}
        with db.write_session() as session:
            session.add(_event(principal, action, object_type, failed, AuditResult.FAILURE))
        raise


def record_refusal(
    db: Database,
    *,
    actor: str,
    actor_id: uuid.UUID | None,
    tenant_id: uuid.UUID | None,
    action: str,
    object_type: str,
    detail: dict[str, Any],
) -> None:
    """Log a refused attempt by someone not (yet) known as a principal, e.g. a sign-in."""
    with db.write_session() as session:
        session.add(
            AuditEvent(
                actor_id=actor_id,
                actor=actor[:64],
                tenant_id=tenant_id,
                action=action,
                object_type=object_type,
                object_id=None,
                result=AuditResult.FAILURE.value,
                detail=detail,
            )
        )


def _event(
    principal: Principal, action: str, object_type: str, scope: MutationScope, result: AuditResult
) -> AuditEvent:
    return AuditEvent(
        actor_id=principal.user_id,
        actor=principal.username,
        tenant_id=scope.tenant_id,
        action=action,
        object_type=object_type,
        object_id=scope.object_id,
        result=result.value,
        detail=scope.detail,
    )


def list_events(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[AuditEvent]:
    """Newest first. A tenant sees only events about its own objects."""
    stmt = principal.scope(select(AuditEvent), AuditEvent.tenant_id)
    if tenant_id is not None:
        stmt = stmt.where(AuditEvent.tenant_id == tenant_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    with db.read_session() as session:
        return paginate(
            session,
            stmt,
            sort=AuditEvent.at,
            id_column=AuditEvent.id,
            limit=limit,
            cursor=cursor,
            descending=True,
        )


def record(
    db: Database,
    principal: Principal,
    action: str,
    object_type: str,
    *,
    tenant_id: uuid.UUID | None,
    object_id: str | None,
    result: AuditResult,
    detail: dict[str, Any],
) -> None:
    """Write one audit event in its own transaction (for work done by workflows)."""
    with db.write_session() as session:
        scope = MutationScope(
            session=session, object_id=object_id, tenant_id=tenant_id, detail=detail
        )
        session.add(_event(principal, action, object_type, scope, result))
