"""Operators: tenants and their quotas (use against limit, create, change limits)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from fuyun.domain.errors import FuyunError
from fuyun.portal.forms import FormState, blank, optional_int
from fuyun.portal.options import label
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import identity, quotas, tenants

router = APIRouter(route_class=PortalRoute)
PAGE = 100
TENANT_FIELDS = ("name", "display_name", *quotas.RESOURCES)


async def _form(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The posted text fields named ``names`` (quota resources vary as capabilities land)."""
    form = await request.form()
    return {name: str(form.get(name, "")) for name in names}


def _limits(values: dict[str, str]) -> dict[str, int]:
    limits = {}
    for key in quotas.RESOURCES:
        value = optional_int(values.get(key, ""), key, low=0)
        if value is not None:
            limits[key] = value
    return limits


def _list_page(request: Request, visitor: Visitor, form: FormState, cursor: str = "") -> Response:
    ctx, who = context(request), visitor.principal
    if not who.sees_everything:
        who.require_operator()
    page = tenants.list_tenants(ctx.db, who, limit=PAGE, cursor=cursor or None)
    return render(
        request,
        "ops/tenants.html",
        status=form.status,
        form=form,
        page=page,
        quotas=tenants.quotas_of(ctx.db, who, [t.id for t in page.items]),
        resources=quotas.RESOURCES,
        label=label,
    )


@router.get("/ops/tenants")
def tenant_list(request: Request, visitor: Reader, cursor: str = "") -> Response:
    return _list_page(request, visitor, blank(TENANT_FIELDS, **quotas.DEFAULT_LIMITS), cursor)


@router.post("/ops/tenants")
async def tenant_create(request: Request, visitor: Writer) -> Response:
    values = await _form(request, TENANT_FIELDS)
    return await run_in_threadpool(_create, request, visitor, values)


def _create(request: Request, visitor: Visitor, values: dict[str, str]) -> Response:
    form = FormState(TENANT_FIELDS, values=values)
    try:
        tenant = tenants.create_tenant(
            context(request).db,
            visitor.principal,
            name=values["name"].strip(),
            display_name=values["display_name"].strip(),
            limits=_limits(values),
        )
    except FuyunError as exc:
        return _list_page(request, visitor, form.fail(exc))
    return redirect(f"/ops/tenants/{tenant.id}", f"Tenant {tenant.name} created.")


def _detail(
    request: Request, visitor: Visitor, tenant_id: uuid.UUID, form: FormState | None = None
) -> Response:
    ctx, who = context(request), visitor.principal
    tenant = tenants.get_tenant(ctx.db, who, tenant_id)
    usage = tenants.get_quota(ctx.db, who, tenant_id).usage
    if form is None:
        form = blank(quotas.RESOURCES, **{u.resource: str(u.limit) for u in usage})
    return render(
        request,
        "ops/tenant.html",
        status=form.status,
        form=form,
        tenant=tenant,
        usage=usage,
        label=label,
        users=identity.list_users(ctx.db, who, tenant_id=tenant_id, limit=PAGE).items,
    )


@router.get("/ops/tenants/{tenant_id}")
def tenant_detail(request: Request, visitor: Reader, tenant_id: uuid.UUID) -> Response:
    return _detail(request, visitor, tenant_id)


@router.post("/ops/tenants/{tenant_id}/quota")
async def tenant_quota(request: Request, visitor: Writer, tenant_id: uuid.UUID) -> Response:
    values = await _form(request, quotas.RESOURCES)
    return await run_in_threadpool(_set_quota, request, visitor, tenant_id, values)


def _set_quota(
    request: Request, visitor: Visitor, tenant_id: uuid.UUID, values: dict[str, str]
) -> Response:
    form = FormState(quotas.RESOURCES, values=values)
    try:
        tenants.set_quota(context(request).db, visitor.principal, tenant_id, _limits(values))
    except FuyunError as exc:
        if exc.status == 404:
            raise
        return _detail(request, visitor, tenant_id, form.fail(exc))
    return redirect(f"/ops/tenants/{tenant_id}", "Quota limits saved.")
