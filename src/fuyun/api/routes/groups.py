"""Server groups."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas import GroupCreate, GroupPublic
from fuyun.services import groups

router = APIRouter(responses=ERRORS, tags=["server-groups"])


@router.get("/server-groups", response_model=list[GroupPublic])
def list_groups(ctx: Ctx, who: Caller) -> list[GroupPublic]:
    return [GroupPublic.model_validate(g) for g in groups.list_groups(ctx.db, who)]


@router.post("/server-groups", response_model=GroupPublic, status_code=status.HTTP_201_CREATED)
def create_group(ctx: Ctx, who: Caller, body: GroupCreate) -> GroupPublic:
    return GroupPublic.model_validate(
        groups.create_group(
            ctx.db,
            who,
            name=body.name,
            policy=body.policy,
            level=body.level,
            tenant_id=body.tenant_id,
        )
    )


@router.get("/server-groups/{group_id}", response_model=GroupPublic)
def get_group(ctx: Ctx, who: Caller, group_id: uuid.UUID) -> GroupPublic:
    return GroupPublic.model_validate(groups.get_group(ctx.db, who, group_id))


@router.delete("/server-groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(ctx: Ctx, who: Caller, group_id: uuid.UUID) -> None:
    groups.delete_group(ctx.db, who, group_id)
