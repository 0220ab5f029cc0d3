"""The console's migrations: plan a move and start it, evacuate a host, follow a batch.

A plan is a GET (it changes nothing); starting a move or an evacuation is a POST
that redirects to what it started. A batch page shows its progress bar and each
VM's outcome, and refreshes itself while the batch runs (``portal.js``; without
script, the page's refresh link does the same).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.portal.forms import FormState, blank, optional_str
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import inventory, vms
from fuyun.services.migration import batch, service
from fuyun.services.migration.plan import MigrationPlan, Target
from fuyun.store.models import Host, Tenant

router = APIRouter(route_class=PortalRoute)
FIELDS = ("vm", "to")
HISTORY = 20


def _vm_id(request: Request, visitor: Visitor, ref: str) -> uuid.UUID:
    ref = ref.strip()
    if not ref:
        raise InvalidInput("is required", field="vm")
    try:
        return uuid.UUID(ref)
    except ValueError:
        pass
    page = vms.list_vms(context(request).db, visitor.principal, name_prefix=ref, limit=50)
    found = [v for v in page.items if v.name == ref]
    if len(found) != 1:
        raise InvalidInput(
            f"no VM named '{ref}'"
            if not found
            else f"{len(found)} VMs are named '{ref}'; give the id",
            field="vm",
        )
    return found[0].id


def _page(
    request: Request,
    visitor: Visitor,
    form: FormState,
    plan: MigrationPlan | None = None,
) -> Response:
    rt = context(request).runtime
    who = visitor.principal
    return render(
        request,
        "ops/migrations.html",
        status=form.status,
        form=form,
        plan=plan,
        batches=batch.recent(rt, who, HISTORY),
        moves=service.list_migrations(rt, who, limit=HISTORY),
    )


@router.get("/ops/migrations")
def migrations(request: Request, visitor: Reader, vm: str = "", to: str = "") -> Response:
    """The plan form; with ``vm`` given, the feasibility answer for that move."""
    visitor.principal.require_operator()
    form = blank(FIELDS, vm=vm, to=to)
    plan = None
    if vm:
        try:
            vm_id = _vm_id(request, visitor, vm)
            plan = service.plan(
                context(request).runtime, visitor.principal, vm_id, Target(host=optional_str(to))
            )
        except FuyunError as exc:
            if exc.status >= 500:
                raise
            form.fail(exc)
    return _page(request, visitor, form, plan)


@router.post("/ops/migrations")
def start_move(
    request: Request,
    visitor: Writer,
    vm: Annotated[str, Form()] = "",
    to: Annotated[str, Form()] = "",
) -> Response:
    form = blank(FIELDS, vm=vm, to=to)
    rt = context(request).runtime
    try:
        vm_id = _vm_id(request, visitor, vm)
        result = service.migrate(rt, visitor.principal, vm_id, Target(host=optional_str(to)))
    except FuyunError as exc:
        if exc.status >= 500 and exc.code != "driver_error":
            raise
        form.fail(exc)
        return _page(request, visitor, form)
    p = result.plan
    return redirect(
        "/ops/migrations", f"Moved {p.vm} from {p.source_host} to {p.target_host} ({p.scope})."
    )


@router.post("/ops/hosts/{host_id}/evacuate")
def evacuate(request: Request, visitor: Writer, host_id: uuid.UUID) -> Response:
    """Maintenance, then every VM off the host; follow it on the batch's page."""
    ctx = context(request)
    host = inventory.get_object(ctx.db, visitor.principal, "host", host_id)
    batch_id = batch.start(ctx.runtime, visitor.principal, "evacuate-host", str(host.id))
    return redirect(f"/ops/migrations/batches/{batch_id}", f"Evacuating {host.name}.")


def _batch_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "state": row.state,
        "total": row.total,
        "moved": row.moved,
        "failed": row.failed,
    }


@router.get("/ops/migrations/batches/{batch_id}.json")
def batch_status(request: Request, visitor: Reader, batch_id: uuid.UUID) -> Response:
    row = batch.get(context(request).runtime, visitor.principal, batch_id)
    return JSONResponse(_batch_json(row))


@router.get("/ops/migrations/batches/{batch_id}")
def batch_page(request: Request, visitor: Reader, batch_id: uuid.UUID) -> Response:
    ctx = context(request)
    row = batch.get(ctx.runtime, visitor.principal, batch_id)
    target = row.target
    try:
        names = inventory.names_of(ctx.db, Host, [uuid.UUID(target)])
        target = names.get(uuid.UUID(target), target)
    except ValueError:
        pass
    return render(request, "ops/batch.html", batch=row, target=target)


def evacuation_plans(request: Request, visitor: Visitor, vm_rows: list[Any]) -> dict[str, Any]:
    """Each VM's feasibility answer for the evacuation page (the scheduler picks targets)."""
    rt = context(request).runtime
    out: dict[str, Any] = {}
    for vm in vm_rows:
        try:
            out[str(vm.id)] = service.plan(rt, visitor.principal, vm.id, Target())
        except FuyunError as exc:
            out[str(vm.id)] = exc.message
    return out


def tenant_names(request: Request, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return inventory.names_of(context(request).db, Tenant, ids)
