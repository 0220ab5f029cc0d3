"""The operator console's fabric: the map, a module's hosts, a host, maintenance, evacuation.

The map is aggregated in the store (one ``GROUP BY`` over hosts per ToR), so the
``default`` fabric's 6,400 hosts cost a few milliseconds and 176 cells; clicking a
module draws its ToRs by hosts (800 cells); clicking a host opens it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.enums import HostState
from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.portal import heat
from fuyun.portal.forms import blank
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Visitor, Writer, context
from fuyun.services import agents, drift, inventory, vms
from fuyun.services.views import fabric as fabric_view
from fuyun.store.models import Flavor, Module, Site, Switch, Tenant

router = APIRouter(route_class=PortalRoute)
HOST_VMS = 200


@router.get("/ops/fabric")
def fabric(request: Request, visitor: Reader, metric: str = "") -> Response:
    ctx = context(request)
    chosen = heat.metric(metric)
    sites = fabric_view.fabric_map(
        ctx.db,
        visitor.principal,
        ctx.settings.cpu_allocation_ratio,
        ctx.settings.ram_allocation_ratio,
    )
    modules = [m for s in sites for m in s.modules]
    switches = [t.switch for m in modules for t in m.tors]
    switches += [a for m in modules for a in m.aggregation]
    hot = sorted(
        (sw for sw in switches if heat.hot(sw.usage.worst_table)),
        key=lambda sw: -sw.usage.worst_table,
    )
    return render(
        request,
        "ops/fabric.html",
        sites=sites,
        metric=chosen,
        metrics=heat.METRICS,
        modules=len(modules),
        hosts=sum(m.hosts for m in modules),
        hot=hot,
    )


@router.get("/ops/modules/{module_id}")
def module(request: Request, visitor: Reader, module_id: uuid.UUID, metric: str = "") -> Response:
    ctx = context(request)
    grid = fabric_view.module_grid(
        ctx.db,
        visitor.principal,
        module_id,
        ctx.settings.cpu_allocation_ratio,
        ctx.settings.ram_allocation_ratio,
    )
    return render(
        request, "ops/module.html", grid=grid, metric=heat.metric(metric), metrics=heat.METRICS
    )


def _host_page(
    request: Request, visitor: Visitor, host_id: uuid.UUID, error: FuyunError | None = None
) -> Response:
    ctx, who = context(request), visitor.principal
    host = inventory.get_object(ctx.db, who, "host", host_id)
    on_host = vms.list_vms(ctx.db, who, host=str(host.id), limit=HOST_VMS)
    form = blank(("state", "drift"))
    if error is not None:
        form.fail(error)
    drifts, drift_error = [], None
    if who.is_operator:  # the hypervisor's view costs a driver call: operators only
        try:
            drifts = drift.scan(ctx.runtime, who, host=host.name)
        except FuyunError as exc:
            drift_error = exc.message
    return render(
        request,
        "ops/host.html",
        status=form.status,
        form=form,
        host=host,
        vms=on_host,
        tor=inventory.names_of(ctx.db, Switch, [host.tor_id]).get(host.tor_id),
        module=inventory.names_of(ctx.db, Module, [host.module_id]).get(host.module_id),
        site=inventory.names_of(ctx.db, Site, [host.site_id]).get(host.site_id),
        tenants=inventory.names_of(ctx.db, Tenant, [v.tenant_id for v in on_host.items]),
        flavors=inventory.names_of(ctx.db, Flavor, [v.flavor_id for v in on_host.items]),
        agent=agents.host_agent_view(ctx.db, who, host.id),
        cpu_cap=host.vcpus * ctx.settings.cpu_allocation_ratio,
        ram_cap=int(host.ram_mb * ctx.settings.ram_allocation_ratio),
        drifts=drifts,
        drift_error=drift_error,
        driver=ctx.runtime.driver.name,
    )


@router.get("/ops/hosts/{host_id}")
def host_detail(request: Request, visitor: Reader, host_id: uuid.UUID) -> Response:
    return _host_page(request, visitor, host_id)


@router.post("/ops/hosts/{host_id}/state")
def host_state(
    request: Request, visitor: Writer, host_id: uuid.UUID, state: Annotated[str, Form()] = ""
) -> Response:
    """Maintenance stops new placements at once: the scheduler's snapshot is told too."""
    ctx = context(request)
    try:
        try:
            wanted = HostState(state)
        except ValueError:
            raise InvalidInput(
                "state must be active, maintenance or failed", field="state"
            ) from None
        host, to_move = inventory.set_host_state(ctx.db, visitor.principal, host_id, wanted)
    except FuyunError as exc:
        if exc.status == 404:
            raise
        return _host_page(request, visitor, host_id, exc)
    ctx.runtime.placement.host_state_changed(host.id, host.state)
    n = len(to_move)
    note = f" {n} VM{'s' if n > 1 else ''} still run{'' if n > 1 else 's'} on it." if n else ""
    where = "in maintenance" if host.state == HostState.MAINTENANCE.value else host.state
    return redirect(f"/ops/hosts/{host.id}", f"{host.name} is now {where}.{note}")


@router.post("/ops/hosts/{host_id}/drift")
def host_drift(
    request: Request,
    visitor: Writer,
    host_id: uuid.UUID,
    action: Annotated[str, Form()] = "",
    vm_id: Annotated[str, Form()] = "",
) -> Response:
    """Repair (the hypervisor obeys the store) or adopt (the store agrees) one drift."""
    ctx, who = context(request), visitor.principal
    host = inventory.get_object(ctx.db, who, "host", host_id)
    try:
        try:
            vm = uuid.UUID(vm_id)
        except ValueError:
            raise InvalidInput("not a VM id", field="drift") from None
        if action == "repair":
            done = drift.repair(ctx.runtime, who, host.name, vm)
        elif action == "adopt":
            done = drift.adopt(ctx.runtime, who, host.name, vm)
        else:
            raise InvalidInput("action must be repair or adopt", field="drift")
    except FuyunError as exc:
        return _host_page(request, visitor, host_id, exc)
    verb = "repaired" if action == "repair" else "adopted"
    return redirect(f"/ops/hosts/{host.id}", f"{done.kind.value} VM {vm} {verb}.")


@router.get("/ops/hosts/{host_id}/evacuate")
def evacuate(request: Request, visitor: Reader, host_id: uuid.UUID) -> Response:
    """What must move before the host can be worked on, where each VM would go (or why
    it cannot), and the button that starts the evacuation."""
    from fuyun.portal.routes_migrations import evacuation_plans

    ctx, who = context(request), visitor.principal
    host = inventory.get_object(ctx.db, who, "host", host_id)  # the fabric: operators, viewers
    on_host = vms.list_vms(ctx.db, who, host=str(host.id), limit=1000)
    return render(
        request,
        "ops/evacuate.html",
        host=host,
        vms=on_host.items,
        more=on_host.next_cursor is not None,
        tenants=inventory.names_of(ctx.db, Tenant, [v.tenant_id for v in on_host.items]),
        plans=evacuation_plans(request, visitor, on_host.items) if who.is_operator else {},
    )
