"""Route leaks: a tenant asks for routing to another tenant's network; an operator approves.

A partner admin sees the leaks its tenant is a side of, with their state, and asks
for one from its own network to a peer network id the other tenant shared (its own
networks' ids are listed to share in turn). An operator sees every leak, pending
first, and approves or revokes; either side's admin may revoke. Refusals (the same
ranges on both sides, one VRF, an unknown network) are shown at the field.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.enums import Role
from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.portal.forms import FormState, Posted, optional_choice, optional_str, submit
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import networks, route_leaks
from fuyun.services.route_leaks import LeakRequest

router = APIRouter(route_class=PortalRoute)


class LeakForm(Posted):
    network_id: str = ""
    peer_network_id: str = ""
    peer_prefix: str = ""
    description: str = ""


def _page(request: Request, visitor: Visitor, form: FormState) -> Response:
    ctx, who = context(request), visitor.principal
    leaks = route_leaks.list_leaks(ctx.db, who)
    leaks.sort(key=lambda v: (v.leak.state != "pending", v.leak.created_at))
    own = networks.list_networks(ctx.db, who, limit=500).items if who.tenant_id else []
    return render(
        request,
        "route_leaks.html",
        status=form.status,
        form=form,
        leaks=leaks,
        own_networks=own,
        network_options=[("", "choose a network")] + [(str(n.id), n.name) for n in own],
        may_request=who.is_operator or who.role is Role.TENANT_ADMIN,
    )


@router.get("/route-leaks")
def leak_list(request: Request, visitor: Reader) -> Response:
    return _page(request, visitor, LeakForm.blank())


@router.post("/route-leaks")
def leak_request(request: Request, visitor: Writer, sent: Annotated[LeakForm, Form()]) -> Response:
    def attempt() -> Response:
        network = optional_choice(sent.network_id, "network_id", "a network")
        peer = optional_choice(sent.peer_network_id, "peer_network_id", "a network id")
        if network is None:
            raise InvalidInput("choose your network", field="network_id")
        if peer is None:
            raise InvalidInput("the peer network's id is required", field="peer_network_id")
        req = LeakRequest(network, peer, optional_str(sent.peer_prefix), sent.description.strip())
        made = route_leaks.request_leak(context(request).db, visitor.principal, req)
        state = "approved" if made.state == "approved" else "waiting for an operator"
        return redirect("/route-leaks", f"Route leak requested: {state}.")

    return submit(sent.state(), attempt, lambda form: _page(request, visitor, form))


@router.post("/route-leaks/{leak_id}/approve")
def leak_approve(request: Request, visitor: Writer, leak_id: uuid.UUID) -> Response:
    try:
        route_leaks.approve_leak(context(request).db, visitor.principal, leak_id)
    except FuyunError as exc:
        return _page(request, visitor, LeakForm.blank().fail(exc))
    return redirect("/route-leaks", "Route leak approved: the two networks route to each other.")


@router.post("/route-leaks/{leak_id}/revoke")
def leak_revoke(request: Request, visitor: Writer, leak_id: uuid.UUID) -> Response:
    try:
        route_leaks.revoke_leak(context(request).db, visitor.principal, leak_id)
    except FuyunError as exc:
        return _page(request, visitor, LeakForm.blank().fail(exc))
    return redirect("/route-leaks", "Route leak revoked: its routes are withdrawn.")
