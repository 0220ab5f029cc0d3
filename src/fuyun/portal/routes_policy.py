"""Security groups and their rules (partners), and the isolation verification report (operators).

A rule's validation error (a bad CIDR, ports without a protocol, an unknown remote
group) is shown next to the field it names, exactly as the API names it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.portal.forms import FormState, Posted, optional_int, optional_str, submit, tenant_choice
from fuyun.portal.options import tenant_options
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import inventory, policy, reports, verification
from fuyun.store.models import SecurityGroup, Tenant

router = APIRouter(route_class=PortalRoute)


class GroupForm(Posted):
    name: str = ""
    description: str = ""
    tenant_id: str = ""


class RuleForm(Posted):
    direction: str = ""
    ethertype: str = "4"
    protocol: str = "any"
    port_min: str = ""
    port_max: str = ""
    remote_cidr: str = ""
    remote_group: str = ""
    description: str = ""


def _groups_page(request: Request, visitor: Visitor, form: FormState) -> Response:
    ctx, who = context(request), visitor.principal
    items = policy.list_groups(ctx.db, who)
    return render(
        request,
        "security_groups.html",
        status=form.status,
        form=form,
        groups=items,
        owners=inventory.names_of(ctx.db, Tenant, [g.tenant_id for g in items])
        if who.sees_everything
        else {},
        tenants=tenant_options(ctx.db, who) if who.is_operator else [],
    )


@router.get("/security-groups")
def group_list(request: Request, visitor: Reader) -> Response:
    return _groups_page(request, visitor, GroupForm.blank())


@router.post("/security-groups")
def group_create(request: Request, visitor: Writer, sent: Annotated[GroupForm, Form()]) -> Response:
    def attempt() -> Response:
        group = policy.create_group(
            context(request).db,
            visitor.principal,
            name=sent.name.strip(),
            description=sent.description.strip(),
            tenant_id=tenant_choice(sent.tenant_id),
        )
        return redirect(f"/security-groups/{group.id}", f"Security group {group.name} created.")

    return submit(sent.state(), attempt, lambda form: _groups_page(request, visitor, form))


def _group_page(
    request: Request, visitor: Visitor, group_id: uuid.UUID, form: FormState
) -> Response:
    ctx, who = context(request), visitor.principal
    group, rules = policy.get_group(ctx.db, who, group_id)
    siblings = [g for g in policy.list_groups(ctx.db, who) if g.tenant_id == group.tenant_id]
    return render(
        request,
        "security_group.html",
        status=form.status,
        form=form,
        group=group,
        rules=rules,
        remote_names=inventory.names_of(
            ctx.db, SecurityGroup, [r.remote_group_id for r in rules if r.remote_group_id]
        ),
        directions=[(d, d) for d in policy.DIRECTIONS],
        protocols=[(p, p) for p in policy.PROTOCOLS],
        ethertypes=[("4", "IPv4"), ("6", "IPv6")],
        remote_groups=[("", "none")] + [(g.name, g.name) for g in siblings],
    )


@router.get("/security-groups/{group_id}")
def group_detail(request: Request, visitor: Reader, group_id: uuid.UUID) -> Response:
    return _group_page(
        request, visitor, group_id, RuleForm.blank(direction="ingress", protocol="tcp")
    )


@router.post("/security-groups/{group_id}/rules")
def rule_add(
    request: Request, visitor: Writer, group_id: uuid.UUID, sent: Annotated[RuleForm, Form()]
) -> Response:
    def attempt() -> Response:
        if sent.ethertype not in ("4", "6"):
            raise InvalidInput("choose IPv4 or IPv6", field="ethertype")
        lo = optional_int(sent.port_min, "port_min", low=1, high=65535)
        hi = optional_int(sent.port_max, "port_max", low=1, high=65535)
        policy.add_rule(
            context(request).db,
            visitor.principal,
            group_id,
            policy.RuleSpec(
                direction=sent.direction,
                ethertype=int(sent.ethertype),
                protocol=sent.protocol,
                port_min=lo,
                port_max=hi if hi is not None else lo,
                remote_cidr=optional_str(sent.remote_cidr),
                remote_group=optional_str(sent.remote_group),
                description=sent.description.strip(),
            ),
        )
        return redirect(f"/security-groups/{group_id}", "Rule added.")

    return submit(sent.state(), attempt, lambda form: _group_page(request, visitor, group_id, form))


@router.post("/security-groups/{group_id}/rules/{rule_id}/delete")
def rule_delete(
    request: Request, visitor: Writer, group_id: uuid.UUID, rule_id: uuid.UUID
) -> Response:
    try:
        policy.delete_rule(context(request).db, visitor.principal, rule_id)
    except FuyunError as exc:
        return _group_page(request, visitor, group_id, RuleForm.blank().fail(exc))
    return redirect(f"/security-groups/{group_id}", "Rule removed.")


@router.post("/security-groups/{group_id}/delete")
def group_delete(request: Request, visitor: Writer, group_id: uuid.UUID) -> Response:
    ctx = context(request)
    group, _ = policy.get_group(ctx.db, visitor.principal, group_id)
    try:
        policy.delete_group(ctx.db, visitor.principal, group_id)
    except FuyunError as exc:
        return _group_page(request, visitor, group_id, RuleForm.blank().fail(exc))
    return redirect("/security-groups", f"Security group {group.name} deleted.")


@router.get("/ops/verify")
def verify_page(request: Request, visitor: Reader) -> Response:
    """The latest stored verification, its age and whether compiled state changed since.

    Nothing is recomputed here: a run reads the whole fabric and takes seconds.
    """
    visitor.principal.require_operator()
    run = verification.latest(context(request).db, visitor.principal)
    return render(request, "ops/verify.html", run=run, age_text=reports.age_text)


@router.post("/ops/verify")
def verify_run(request: Request, visitor: Writer) -> Response:
    """Run a verification now (in this request's worker thread) and store it."""
    verification.run(context(request).db, visitor.principal, limit=100)
    return redirect("/ops/verify", "Verification finished and stored.")
