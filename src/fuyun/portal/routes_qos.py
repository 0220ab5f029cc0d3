"""QoS policies: define guarantees and ceilings, apply them to VMs and the tenant aggregate.

Each form re-renders with the user's input and the error next to the field the
service names — a guarantee above the ceiling at ``guarantee_mbps``, an uplink
that cannot take the guarantee at the policy chosen for the VM.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.portal.forms import (
    FormState,
    blank,
    optional_int,
    optional_str,
    required_int,
    tenant_choice,
)
from fuyun.portal.options import tenant_options
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import inventory, qos, vms
from fuyun.services.qos import PolicySpec
from fuyun.store.models import Tenant

router = APIRouter(route_class=PortalRoute)
FIELDS = (
    "name",
    "scope",
    "guarantee_mbps",
    "ceiling_mbps",
    "burst_bytes",
    "description",
    "tenant_id",
)
APPLY_FIELDS = ("vm_id", "qos_policy")
AGGREGATE_FIELDS = ("aggregate",)
SCOPES = [("port", "port — each VM NIC"), ("tenant", "tenant — aggregate on every host")]


def _page(
    request: Request,
    visitor: Visitor,
    form: FormState,
    apply: FormState | None = None,
    aggregate: FormState | None = None,
) -> Response:
    ctx, who = context(request), visitor.principal
    policies = qos.list_policies(ctx.db, who)
    current = qos.get_tenant_policy(ctx.db, who, who.tenant_id) if who.tenant_id else None
    status = max(
        form.status, apply.status if apply else 200, aggregate.status if aggregate else 200
    )
    vm_items = vms.list_vms(ctx.db, who, limit=500).items if who.tenant_id else []
    return render(
        request,
        "qos.html",
        status=status,
        form=form,
        apply=apply or blank(APPLY_FIELDS),
        aggregate=aggregate or blank(AGGREGATE_FIELDS, aggregate=current.name if current else ""),
        policies=policies,
        current=current,
        scopes=SCOPES,
        vm_options=[("", "choose a VM")] + [(str(v.id), v.name) for v in vm_items],
        port_options=[("", "none (remove)")]
        + [(p.name, p.name) for p in policies if p.scope == "port"],
        tenant_policy_options=[("", "none")]
        + [(p.name, p.name) for p in policies if p.scope == "tenant"],
        owners=inventory.names_of(ctx.db, Tenant, [p.tenant_id for p in policies])
        if who.sees_everything
        else {},
        tenants=tenant_options(ctx.db, who) if who.is_operator else [],
    )


@router.get("/qos")
def qos_list(request: Request, visitor: Reader) -> Response:
    return _page(request, visitor, blank(FIELDS, scope="port", guarantee_mbps="0"))


@router.post("/qos")
def qos_create(
    request: Request,
    visitor: Writer,
    name: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "port",
    guarantee_mbps: Annotated[str, Form()] = "",
    ceiling_mbps: Annotated[str, Form()] = "",
    burst_bytes: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    tenant_id: Annotated[str, Form()] = "",
) -> Response:
    values = dict(
        name=name,
        scope=scope,
        guarantee_mbps=guarantee_mbps,
        ceiling_mbps=ceiling_mbps,
        burst_bytes=burst_bytes,
        description=description,
        tenant_id=tenant_id,
    )
    form = FormState(FIELDS, values=values)
    try:
        spec = PolicySpec(
            name=name.strip(),
            scope=scope,
            guarantee_mbps=optional_int(guarantee_mbps, "guarantee_mbps") or 0,
            ceiling_mbps=required_int(ceiling_mbps, "ceiling_mbps"),
            burst_bytes=optional_int(burst_bytes, "burst_bytes") or 0,
            description=description.strip(),
        )
        policy = qos.create_policy(
            context(request).db, visitor.principal, spec, tenant_id=tenant_choice(tenant_id)
        )
    except FuyunError as exc:
        return _page(request, visitor, form.fail(exc))
    return redirect("/qos", f"QoS policy {policy.name} created.")


@router.post("/qos/apply")
def qos_apply(
    request: Request,
    visitor: Writer,
    vm_id: Annotated[str, Form()] = "",
    qos_policy: Annotated[str, Form()] = "",
) -> Response:
    form = FormState(APPLY_FIELDS, values=dict(vm_id=vm_id, qos_policy=qos_policy))
    try:
        try:
            vm = uuid.UUID(vm_id.strip())
        except ValueError:
            raise InvalidInput("choose a VM from the list", field="vm_id") from None
        ports = qos.set_vm_policy(
            context(request).runtime, visitor.principal, vm, optional_str(qos_policy)
        )
    except FuyunError as exc:
        return _page(request, visitor, blank(FIELDS, scope="port"), apply=form.fail(exc))
    what = qos_policy.strip() or "no policy"
    return redirect("/qos", f"{len(ports)} NIC(s) now have {what}.")


@router.post("/qos/aggregate")
def qos_aggregate(
    request: Request, visitor: Writer, aggregate: Annotated[str, Form()] = ""
) -> Response:
    form = FormState(AGGREGATE_FIELDS, values=dict(aggregate=aggregate))
    form.aliases = {"qos_policy": "aggregate"}
    who = visitor.principal
    try:
        if who.tenant_id is None:
            raise InvalidInput("operators set an aggregate through the API", field="aggregate")
        qos.set_tenant_policy(context(request).runtime, who, who.tenant_id, optional_str(aggregate))
    except FuyunError as exc:
        return _page(request, visitor, blank(FIELDS, scope="port"), aggregate=form.fail(exc))
    return redirect("/qos", f"Aggregate set to {aggregate.strip() or 'none'}.")


@router.post("/qos/{policy_id}/delete")
def qos_delete(request: Request, visitor: Writer, policy_id: uuid.UUID) -> Response:
    ctx = context(request)
    policy = qos.get_policy(ctx.db, visitor.principal, policy_id)
    try:
        qos.delete_policy(ctx.db, visitor.principal, policy_id)
    except FuyunError as exc:
        return _page(request, visitor, blank(FIELDS).fail(exc))
    return redirect("/qos", f"QoS policy {policy.name} deleted.")
