"""The audit log, newest first; tenants see their own events only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit, page_of
from fuyun.api.schemas import AuditEventPublic, ListOf
from fuyun.services import audit

router = APIRouter(responses=ERRORS, tags=["audit-events"])


@router.get("/audit-events", response_model=ListOf[AuditEventPublic])
def list_events(
    ctx: Ctx,
    who: Caller,
    tenant_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict:
    return page_of(
        audit.list_events(
            ctx.db,
            who,
            tenant_id=tenant_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            since=since,
            limit=limit,
            cursor=cursor,
        ),
        AuditEventPublic,
    )
