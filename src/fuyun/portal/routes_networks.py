"""Networks (create by CIDR or prefix length, growth strategy, utilization) and server groups."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.portal.forms import (
    FormState,
    Posted,
    blank,
    optional_int,
    optional_str,
    submit,
    tenant_choice,
)
from fuyun.portal.options import tenant_options
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import groups, inventory, netservices, networks, ports, utilization
from fuyun.services.networks import Growth, NetworkRequest
from fuyun.store.models import Tenant, Vm

router = APIRouter(route_class=PortalRoute)


class NetworkForm(Posted):
    name: str = ""
    cidr: str = ""
    prefix_len: str = ""
    growth: str = "secondary"
    description: str = ""
    tenant_id: str = ""
    site: str = ""
    dhcp: str = ""  # "on" when the box is ticked; browsers send nothing otherwise


class GroupForm(Posted):
    name: str = ""
    policy: str = ""
    level: str = ""
    tenant_id: str = ""


GROWTH = [
    ("secondary", "secondary — add a subnet on the same VLAN"),
    ("new-vlan", "new-vlan — add a VLAN with its own subnet"),
    ("refuse", "refuse — stay at the first subnet"),
]


def _networks_page(request: Request, visitor: Visitor, form: FormState) -> Response:
    ctx, who = context(request), visitor.principal
    report = utilization.report(ctx.db, who)
    sites = []
    if who.is_operator:
        sites = [("", "any")] + [
            (s.name, f"{s.name} ({s.city})" if s.city else s.name)
            for s in inventory.list_objects(ctx.db, who, "site", limit=1000).items
        ]
    return render(
        request,
        "networks.html",
        status=form.status,
        form=form,
        report=report,
        growth=GROWTH,
        sites=sites,
        tenants=tenant_options(ctx.db, who) if who.is_operator else [],
        owners=inventory.names_of(ctx.db, Tenant, [n.tenant_id for n in report.networks])
        if who.sees_everything
        else {},
    )


@router.get("/networks")
def network_list(request: Request, visitor: Reader) -> Response:
    return _networks_page(request, visitor, NetworkForm.blank(growth="secondary", dhcp="on"))


@router.post("/networks")
def network_create(
    request: Request, visitor: Writer, sent: Annotated[NetworkForm, Form()]
) -> Response:
    def attempt() -> Response:
        length = optional_int(sent.prefix_len, "prefix_len", low=8, high=128)
        if sent.cidr.strip() and length is not None:
            raise InvalidInput("give a CIDR or a prefix length, not both", field="cidr")
        if sent.growth not in {g.value for g in Growth}:
            raise InvalidInput("choose a growth strategy from the list", field="growth")
        network = networks.create_network(
            context(request).networking,
            visitor.principal,
            NetworkRequest(
                name=sent.name.strip(),
                cidr=optional_str(sent.cidr),
                prefix_len=length,
                growth=Growth(sent.growth),
                description=sent.description.strip(),
                tenant_id=tenant_choice(sent.tenant_id),
                site=optional_str(sent.site),
                dhcp=sent.dhcp == "on",
            ),
        )
        return redirect(f"/networks/{network.id}", f"Network {network.name} created.")

    return submit(sent.state(), attempt, lambda form: _networks_page(request, visitor, form))


@router.get("/networks/{network_id}")
def network_detail(request: Request, visitor: Reader, network_id: uuid.UUID) -> Response:
    ctx, who = context(request), visitor.principal
    network = networks.get_network(ctx.db, who, network_id)
    usage = utilization.report(ctx.db, who, network_id=network_id).networks
    attached = ports.list_ports(ctx.db, who, network_id=network_id, limit=200)
    return render(
        request,
        "network.html",
        network=network,
        dhcp=netservices.dhcp_scope(ctx.db, ctx.networking.settings, who, network_id).scope,
        usage=usage[0] if usage else None,
        ports=attached,
        vm_names=inventory.names_of(ctx.db, Vm, [p.vm_id for p in attached.items]),
    )


@router.post("/networks/{network_id}/dhcp")
def network_dhcp(
    request: Request, visitor: Writer, network_id: uuid.UUID, enable: Annotated[str, Form()] = ""
) -> Response:
    """Turn a network's DHCP and DNS on or off (off: static addresses only)."""
    if enable not in ("on", "off"):
        raise InvalidInput("enable must be on or off", field="enable")
    network = networks.update_network(
        context(request).networking, visitor.principal, network_id, dhcp=enable == "on"
    )
    return redirect(f"/networks/{network_id}", f"DHCP and DNS {enable} for {network.name}.")


@router.get("/networks/{network_id}/delete")
def network_delete_page(request: Request, visitor: Reader, network_id: uuid.UUID) -> Response:
    network = networks.get_network(context(request).db, visitor.principal, network_id)
    return render(
        request,
        "confirm.html",
        form=None,
        title=f"Delete network {network.name}?",
        question=f"Delete {network.name}? It is refused while any VM has a NIC on it.",
        consequences=["Its VLANs go back to the module's pool.", "Its subnets are released."],
        action=f"/networks/{network.id}/delete",
        button=f"Delete {network.name}",
        cancel=f"/networks/{network.id}",
    )


@router.post("/networks/{network_id}/delete")
def network_delete(request: Request, visitor: Writer, network_id: uuid.UUID) -> Response:
    ctx = context(request)
    network = networks.get_network(ctx.db, visitor.principal, network_id)
    try:
        networks.delete_network(ctx.networking, visitor.principal, network_id)
    except FuyunError as exc:
        return render(
            request,
            "confirm.html",
            status=exc.status,
            form=blank(()).fail(exc),
            title=f"Delete network {network.name}?",
            question="The network was not deleted.",
            consequences=[],
            action=f"/networks/{network.id}/delete",
            button="Try again",
            cancel=f"/networks/{network.id}",
        )
    return redirect("/networks", f"Network {network.name} deleted.")


def _groups_page(request: Request, visitor: Visitor, form: FormState) -> Response:
    ctx, who = context(request), visitor.principal
    items = groups.list_groups(ctx.db, who)
    return render(
        request,
        "groups.html",
        status=form.status,
        form=form,
        groups=items,
        owners=inventory.names_of(ctx.db, Tenant, [g.tenant_id for g in items])
        if who.sees_everything
        else {},
        policies=[(p, p) for p in groups.POLICIES],
        levels=[(level, level) for level in groups.LEVELS],
        tenants=tenant_options(ctx.db, who) if who.is_operator else [],
    )


@router.get("/groups")
def group_list(request: Request, visitor: Reader) -> Response:
    return _groups_page(request, visitor, GroupForm.blank(policy="anti-affinity", level="host"))


@router.post("/groups")
def group_create(request: Request, visitor: Writer, sent: Annotated[GroupForm, Form()]) -> Response:
    def attempt() -> Response:
        if not 1 <= len(sent.name.strip()) <= 64:
            raise InvalidInput("must be 1-64 characters", field="name")
        group = groups.create_group(
            context(request).db,
            visitor.principal,
            name=sent.name.strip(),
            policy=sent.policy,
            level=sent.level,
            tenant_id=tenant_choice(sent.tenant_id),
        )
        return redirect("/groups", f"Server group {group.name} created.")

    return submit(sent.state(), attempt, lambda form: _groups_page(request, visitor, form))


@router.post("/groups/{group_id}/delete")
def group_delete(request: Request, visitor: Writer, group_id: uuid.UUID) -> Response:
    ctx = context(request)
    group = groups.get_group(ctx.db, visitor.principal, group_id)
    try:
        groups.delete_group(ctx.db, visitor.principal, group_id)
    except FuyunError as exc:
        return _groups_page(request, visitor, GroupForm.blank().fail(exc))
    return redirect("/groups", f"Server group {group.name} deleted.")
