"""The start page: a partner's dashboard, or the operator's overview of the whole fabric."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fuyun.portal.heat import HOT
from fuyun.portal.options import label
from fuyun.portal.rendering import PortalRoute, render
from fuyun.portal.session import Reader, context
from fuyun.services import audit, tenants, vms
from fuyun.services.views import fabric, workflows

router = APIRouter(route_class=PortalRoute)
RECENT = 8


@router.get("/")
def home(request: Request, visitor: Reader) -> Response:
    ctx, who = context(request), visitor.principal
    events = audit.list_events(ctx.db, who, limit=RECENT).items
    running = workflows.list_workflows(ctx.db, who, state="running", limit=RECENT).items
    vm_states = vms.count_by_state(ctx.db, who)
    if who.sees_everything:
        switches = fabric.hot_switch_rows(ctx.db, who, HOT)
        return render(
            request,
            "overview.html",
            host_states=fabric.host_states(ctx.db, who),
            vm_states=vm_states,
            hot=switches[:RECENT],
            hot_count=len(switches),
            events=events,
            running=running,
        )
    assert who.tenant_id is not None  # a principal that does not see everything has a tenant
    tenant = tenants.get_tenant(ctx.db, who, who.tenant_id)
    quota = tenants.get_quota(ctx.db, who, who.tenant_id)
    return render(
        request,
        "dashboard.html",
        tenant=tenant,
        quota=quota.usage,
        label=label,
        vm_states=vm_states,
        events=events,
        running=running,
    )
