"""Tenants and quotas."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit, page_of
from fuyun.api.schemas import (
    ListOf,
    QuotaItem,
    QuotaLimits,
    QuotaPublic,
    TenantCreate,
    TenantPublic,
    TenantUpdate,
)
from fuyun.services import tenants
from fuyun.services.tenants import QuotaView

router = APIRouter(responses=ERRORS)


def _quota(view: QuotaView) -> QuotaPublic:
    return QuotaPublic(
        tenant_id=view.tenant_id,
        usage=[QuotaItem(resource=u.resource, limit=u.limit, used=u.used) for u in view.usage],
    )


@router.get("/tenants", response_model=ListOf[TenantPublic], tags=["tenants"])
def list_tenants(
    ctx: Ctx,
    who: Caller,
    name: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict:
    return page_of(
        tenants.list_tenants(ctx.db, who, name=name, limit=limit, cursor=cursor), TenantPublic
    )


@router.post(
    "/tenants", response_model=TenantPublic, tags=["tenants"], status_code=status.HTTP_201_CREATED
)
def create_tenant(ctx: Ctx, who: Caller, body: TenantCreate) -> TenantPublic:
    return TenantPublic.model_validate(
        tenants.create_tenant(
            ctx.db,
            who,
            name=body.name,
            display_name=body.display_name,
            description=body.description,
            limits=body.quotas.given() if body.quotas else None,
        )
    )


@router.get("/tenants/{tenant_id}", response_model=TenantPublic, tags=["tenants"])
def get_tenant(ctx: Ctx, who: Caller, tenant_id: uuid.UUID) -> TenantPublic:
    return TenantPublic.model_validate(tenants.get_tenant(ctx.db, who, tenant_id))


@router.patch("/tenants/{tenant_id}", response_model=TenantPublic, tags=["tenants"])
def update_tenant(ctx: Ctx, who: Caller, tenant_id: uuid.UUID, body: TenantUpdate) -> TenantPublic:
    return TenantPublic.model_validate(
        tenants.update_tenant(
            ctx.db, who, tenant_id, display_name=body.display_name, description=body.description
        )
    )


@router.delete("/tenants/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["tenants"])
def delete_tenant(ctx: Ctx, who: Caller, tenant_id: uuid.UUID) -> None:
    tenants.delete_tenant(ctx.db, who, tenant_id)


@router.get("/tenants/{tenant_id}/quotas", response_model=QuotaPublic, tags=["quotas"])
def get_quota(ctx: Ctx, who: Caller, tenant_id: uuid.UUID) -> QuotaPublic:
    return _quota(tenants.get_quota(ctx.db, who, tenant_id))


@router.patch("/tenants/{tenant_id}/quotas", response_model=QuotaPublic, tags=["quotas"])
def set_quota(ctx: Ctx, who: Caller, tenant_id: uuid.UUID, body: QuotaLimits) -> QuotaPublic:
    return _quota(tenants.set_quota(ctx.db, who, tenant_id, body.given()))


@router.get("/quotas", response_model=QuotaPublic, tags=["quotas"])
def my_quota(ctx: Ctx, who: Caller) -> QuotaPublic:
    """The caller's own tenant's limits and use."""
    if who.tenant_id is None:
        from fuyun.domain.errors import InvalidInput

        raise InvalidInput("you belong to no tenant; use /tenants/{id}/quotas", field="tenant")
    return _quota(tenants.get_quota(ctx.db, who, who.tenant_id))
