"""VMs: list and filter, apply (create), detail with addresses, resize, power, return.

Partners get the host-independent view (no host, no placement); operators see
both. A long action (create, resize, delete) is an ordinary form POST — it works
without JavaScript — and ``portal.js`` shows the workflow's steps while it runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.domain.vm_states import VmState
from fuyun.portal.forms import FormState, blank, optional_choice, optional_str, required_int
from fuyun.portal.options import (
    flavor_options,
    group_options,
    network_options,
    qos_policy_options,
    security_group_options,
    tenant_options,
)
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import inventory, policy, ports, vms
from fuyun.services.views import workflows
from fuyun.store.models import Flavor, Host, Network, ServerGroup, Tenant

router = APIRouter(route_class=PortalRoute)
PAGE = 50
STATES = [s.value for s in VmState if s is not VmState.DELETED]
CREATE_FIELDS = (
    "name",
    "flavor",
    "networks",
    "security_groups",
    "qos_policy",
    "group",
    "count",
    "strategy",
    "tenant_id",
)
# A quota refusal names the resource; on these forms it is about how many or how big.
CREATE_ALIASES = {"vms": "count", "vcpus": "count", "ram_mb": "count", "bandwidth_mbps": "count"}
RESIZE_ALIASES = {"vcpus": "flavor", "ram_mb": "flavor", "bandwidth_mbps": "flavor"}
VERBS = ("start", "stop", "reboot")


@router.get("/vms")
def vm_list(
    request: Request,
    visitor: Reader,
    state: str = "",
    q: str = "",
    tenant: str = "",
    cursor: str = "",
) -> Response:
    ctx, who = context(request), visitor.principal
    page = vms.list_vms(
        ctx.db,
        who,
        state=state or None,
        name_prefix=q.strip() or None,
        tenant_id=optional_choice(tenant, "tenant"),
        limit=PAGE,
        cursor=cursor or None,
    )
    everything = who.sees_everything
    return render(
        request,
        "vms.html",
        page=page,
        state=state,
        q=q,
        tenant=tenant,
        states=STATES,
        flavors=inventory.names_of(ctx.db, Flavor, [v.flavor_id for v in page.items]),
        tenants=inventory.names_of(ctx.db, Tenant, [v.tenant_id for v in page.items])
        if everything
        else {},
        hosts=inventory.names_of(ctx.db, Host, [v.host_id for v in page.items])
        if everything
        else {},
    )


def _new_page(request: Request, visitor: Visitor, form: FormState) -> Response:
    ctx, who = context(request), visitor.principal
    return render(
        request,
        "vm_new.html",
        status=form.status,
        form=form,
        flavors=flavor_options(ctx.db, who),
        networks=network_options(ctx.db, who),
        security_groups=security_group_options(ctx.db, who),
        qos_policies=qos_policy_options(ctx.db, who),
        groups=group_options(ctx.db, who),
        tenants=tenant_options(ctx.db, who) if who.is_operator else [],
    )


@router.get("/vms/new")
def vm_new(request: Request, visitor: Reader) -> Response:
    return _new_page(request, visitor, blank(CREATE_FIELDS, count="1", flavor="s1.small"))


@router.post("/vms")
def vm_create(
    request: Request,
    visitor: Writer,
    name: Annotated[str, Form()] = "",
    flavor: Annotated[str, Form()] = "",
    networks: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    security_groups: Annotated[list[str], Form()] = [],  # noqa: B006
    qos_policy: Annotated[str, Form()] = "",
    group: Annotated[str, Form()] = "",
    count: Annotated[str, Form()] = "1",
    strategy: Annotated[str, Form()] = "",
    tenant_id: Annotated[str, Form()] = "",
) -> Response:
    form = FormState(
        CREATE_FIELDS,
        values={
            "name": name,
            "flavor": flavor,
            "networks": networks,
            "security_groups": security_groups,
            "qos_policy": qos_policy,
            "group": group,
            "count": count,
            "strategy": strategy,
            "tenant_id": tenant_id,
        },
        aliases=CREATE_ALIASES,
    )
    try:
        made = vms.create_vms(
            context(request).runtime,
            visitor.principal,
            vms.VmRequest(
                name=name.strip(),
                flavor=flavor,
                count=required_int(count, "count", low=1, high=vms.MAX_COUNT),
                tenant_id=optional_choice(tenant_id, "tenant_id"),
                networks=tuple(networks),
                security_groups=tuple(security_groups),
                qos_policy=optional_str(qos_policy),
                group=optional_str(group),
                strategy=optional_str(strategy),
            ),
        )
    except FuyunError as exc:
        return _new_page(request, visitor, form.fail(exc))
    names = ", ".join(vm.name for vm in made.vms)
    message = f"Created {len(made.vms)} VM{'s' if len(made.vms) > 1 else ''}: {names}."
    if len(made.vms) == 1:
        return redirect(f"/vms/{made.vms[0].id}", message)
    return redirect(f"/vms?q={name.strip()}", message)


def _detail(
    request: Request, visitor: Visitor, vm_id: uuid.UUID, form: FormState | None = None
) -> Response:
    ctx, who = context(request), visitor.principal
    vm = vms.get_vm(ctx.db, who, vm_id)
    nics = ports.list_ports(ctx.db, who, vm_id=vm.id, limit=100).items
    form = form or blank(("flavor",))
    return render(
        request,
        "vm.html",
        status=form.status,
        vm=vm,
        nics=nics,
        network_names=inventory.names_of(ctx.db, Network, [p.network_id for p in nics]),
        nic_groups={p.id: policy.groups_of_port(ctx.db, p.id) for p in nics},
        flavor=inventory.names_of(ctx.db, Flavor, [vm.flavor_id]).get(vm.flavor_id, "?"),
        group=inventory.names_of(ctx.db, ServerGroup, [vm.group_id]).get(vm.group_id)
        if vm.group_id
        else None,
        host=inventory.names_of(ctx.db, Host, [vm.host_id]).get(vm.host_id)
        if who.sees_everything and vm.host_id
        else None,
        tenant=inventory.names_of(ctx.db, Tenant, [vm.tenant_id]).get(vm.tenant_id),
        flavors=flavor_options(ctx.db, who),
        workflows=workflows.list_workflows(ctx.db, who, subject=str(vm.id), limit=10).items,
        form=form,
    )


@router.get("/vms/{vm_id}")
def vm_detail(request: Request, visitor: Reader, vm_id: uuid.UUID) -> Response:
    return _detail(request, visitor, vm_id)


@router.post("/vms/{vm_id}/power")
def vm_power(
    request: Request, visitor: Writer, vm_id: uuid.UUID, verb: Annotated[str, Form()] = ""
) -> Response:
    form = blank(("flavor",))
    try:
        if verb not in VERBS:
            raise InvalidInput("verb must be start, stop or reboot", field="verb")
        vm = vms.power(context(request).runtime, visitor.principal, vm_id, verb)
    except FuyunError as exc:
        return _detail(request, visitor, vm_id, form.fail(exc))
    done = {"start": "started", "stop": "stopped", "reboot": "rebooted"}[verb]
    return redirect(f"/vms/{vm_id}", f"{vm.name} {done}.")


@router.post("/vms/{vm_id}/resize")
def vm_resize(
    request: Request, visitor: Writer, vm_id: uuid.UUID, flavor: Annotated[str, Form()] = ""
) -> Response:
    form = FormState(("flavor",), values={"flavor": flavor}, aliases=RESIZE_ALIASES)
    try:
        if not flavor:
            raise InvalidInput("choose a flavor", field="flavor")
        vm = vms.resize_vm(context(request).runtime, visitor.principal, vm_id, flavor)
    except FuyunError as exc:
        return _detail(request, visitor, vm_id, form.fail(exc))
    return redirect(f"/vms/{vm_id}", f"{vm.name} resized to {flavor}.")


def _confirm_delete(
    request: Request, visitor: Visitor, vm_id: uuid.UUID, form: FormState | None = None
) -> Response:
    vm = vms.get_vm(context(request).db, visitor.principal, vm_id)
    return render(
        request,
        "confirm.html",
        status=form.status if form else 200,
        form=form,
        title=f"Delete VM {vm.name}?",
        question=f"Delete {vm.name} for good? This cannot be undone.",
        consequences=[
            "The instance is destroyed.",
            "Its addresses go to quarantine and then back to the network.",
            "Its vCPUs, RAM and bandwidth go back to your quota.",
        ],
        action=f"/vms/{vm.id}/delete",
        button=f"Delete {vm.name}",
        cancel=f"/vms/{vm.id}",
        progress_kind="vm.delete",
        progress_subject=str(vm.id),
    )


@router.get("/vms/{vm_id}/delete")
def vm_delete_page(request: Request, visitor: Reader, vm_id: uuid.UUID) -> Response:
    return _confirm_delete(request, visitor, vm_id)


@router.post("/vms/{vm_id}/delete")
def vm_delete(request: Request, visitor: Writer, vm_id: uuid.UUID) -> Response:
    try:
        vm = vms.delete_vm(context(request).runtime, visitor.principal, vm_id)
    except FuyunError as exc:
        if exc.status == 404:
            raise
        return _confirm_delete(request, visitor, vm_id, blank(()).fail(exc))
    return redirect("/vms", f"{vm.name} deleted.")
