"""Route leaks: request (tenant admins of either side), approve (operators), revoke."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas_leaks import RouteLeakCreate, RouteLeakPublic
from fuyun.services import route_leaks as leaks

router = APIRouter(responses=ERRORS, tags=["route-leaks"])


@router.get("/route-leaks", response_model=list[RouteLeakPublic])
def list_leaks(
    ctx: Ctx,
    who: Caller,
    state: Annotated[str | None, Query(max_length=16, description="pending | approved")] = None,
) -> list[RouteLeakPublic]:
    """Leaks the caller's tenant is a side of (operators: every leak)."""
    return [RouteLeakPublic.of(v) for v in leaks.list_leaks(ctx.db, who, state=state)]


@router.post("/route-leaks", response_model=RouteLeakPublic, status_code=status.HTTP_201_CREATED)
def request_leak(ctx: Ctx, who: Caller, body: RouteLeakCreate) -> RouteLeakPublic:
    """A tenant admin asks (``pending``: nothing routes until an operator approves);
    an operator may create it approved. 409 when the ranges overlap (ambiguous routing),
    422 for two networks of one VRF or a ``peer_prefix`` outside the peer network."""
    req = leaks.LeakRequest(
        body.network_id, body.peer_network_id, body.peer_prefix, body.description, body.approve
    )
    made = leaks.request_leak(ctx.db, who, req)
    return RouteLeakPublic.of(leaks.view_of(ctx.db, made.id))


@router.get("/route-leaks/{leak_id}", response_model=RouteLeakPublic)
def get_leak(ctx: Ctx, who: Caller, leak_id: uuid.UUID) -> RouteLeakPublic:
    return RouteLeakPublic.of(leaks.get_leak(ctx.db, who, leak_id))


@router.post("/route-leaks/{leak_id}/approve", response_model=RouteLeakPublic)
def approve_leak(ctx: Ctx, who: Caller, leak_id: uuid.UUID) -> RouteLeakPublic:
    """Operators: put a pending leak in force (the ToRs and the network node route it)."""
    leaks.approve_leak(ctx.db, who, leak_id)
    return RouteLeakPublic.of(leaks.view_of(ctx.db, leak_id))


@router.delete("/route-leaks/{leak_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_leak(ctx: Ctx, who: Caller, leak_id: uuid.UUID) -> None:
    """Revoke (either side's admin or an operator): its routes are withdrawn."""
    leaks.revoke_leak(ctx.db, who, leak_id)
