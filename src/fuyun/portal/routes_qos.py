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
    Posted,
    optional_choice,
    optional_int,
    optional_str,
    required_int,
    submit,
    tenant_choice,
)
from fuyun.portal.options import tenant_options
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import inventory, qos, vms
from fuyun.services.qos import PolicySpec
from fuyun.store.models import Tenant

router = APIRouter(route_class=PortalRoute)


class PolicyForm(Posted):
    name: str = ""
    scope: str = "port"
    guarantee_mbps: str = ""
    ceiling_mbps: str = ""
    burst_bytes: str = ""
    description: str = ""
    tenant_id: str = ""


class ApplyForm(Posted):
    vm_id: str = ""
    qos_policy: str = ""


class AggregateForm(Posted):
    aliases = {"qos_policy": "aggregate"}
    aggregate: str = ""


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
        apply=apply or ApplyForm.blank(),
        aggregate=aggregate or AggregateForm.blank(aggregate=current.name if current else ""),
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
    return _page(request, visitor, PolicyForm.blank(scope="port", guarantee_mbps="0"))


@router.post("/qos")
def qos_create(request: Request, visitor: Writer, sent: Annotated[PolicyForm, Form()]) -> Response:
    def attempt() -> Response:
        spec = PolicySpec(
            name=sent.name.strip(),
            scope=sent.scope,
            guarantee_mbps=optional_int(sent.guarantee_mbps, "guarantee_mbps") or 0,
            ceiling_mbps=required_int(sent.ceiling_mbps, "ceiling_mbps"),
            burst_bytes=optional_int(sent.burst_bytes, "burst_bytes") or 0,
            description=sent.description.strip(),
        )
        policy = qos.create_policy(
            context(request).db, visitor.principal, spec, tenant_id=tenant_choice(sent.tenant_id)
        )
        return redirect("/qos", f"QoS policy {policy.name} created.")

    return submit(sent.state(), attempt, lambda form: _page(request, visitor, form))


@router.post("/qos/apply")
def qos_apply(request: Request, visitor: Writer, sent: Annotated[ApplyForm, Form()]) -> Response:
    def attempt() -> Response:
        vm = optional_choice(sent.vm_id, "vm_id", "a VM")
        if vm is None:
            raise InvalidInput("choose a VM from the list", field="vm_id")
        ports = qos.set_vm_policy(
            context(request).runtime, visitor.principal, vm, optional_str(sent.qos_policy)
        )
        what = sent.qos_policy.strip() or "no policy"
        return redirect("/qos", f"{len(ports)} NIC(s) now have {what}.")

    return submit(
        sent.state(),
        attempt,
        lambda form: _page(request, visitor, PolicyForm.blank(scope="port"), apply=form),
    )


@router.post("/qos/aggregate")
def qos_aggregate(
    request: Request, visitor: Writer, sent: Annotated[AggregateForm, Form()]
) -> Response:
    who = visitor.principal

    def attempt() -> Response:
        if who.tenant_id is None:
            raise InvalidInput("operators set an aggregate through the API", field="aggregate")
        choice = optional_str(sent.aggregate)
        qos.set_tenant_policy(context(request).runtime, who, who.tenant_id, choice)
        return redirect("/qos", f"Aggregate set to {choice or 'none'}.")

    return submit(
        sent.state(),
        attempt,
        lambda form: _page(request, visitor, PolicyForm.blank(scope="port"), aggregate=form),
    )


@router.post("/qos/{policy_id}/delete")
def qos_delete(request: Request, visitor: Writer, policy_id: uuid.UUID) -> Response:
    ctx = context(request)
    policy = qos.get_policy(ctx.db, visitor.principal, policy_id)
    try:
        qos.delete_policy(ctx.db, visitor.principal, policy_id)
    except FuyunError as exc:
        return _page(request, visitor, PolicyForm.blank().fail(exc))
    return redirect("/qos", f"QoS policy {policy.name} deleted.")
