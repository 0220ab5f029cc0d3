"""A network node's API: its modules' network services and route leaks, and its reports.

Same credentials as the host agent's endpoints (``fyh_…`` for the host's own module,
or an operator's token with ``module`` for any); the general API never takes them.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from fuyun.api.deps import Ctx
from fuyun.api.routes.agents import Agent
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas_agents import (
    NetworkServicesApplied,
    NetworkServicesGenerations,
    NetworkServicesReported,
)
from fuyun.services import agent_netservices as ans

router = APIRouter(responses=ERRORS, tags=["agents"])
Modules = Annotated[
    list[str] | None, Query(max_length=32, description="modules served (default: the host's)")
]


@router.get("/agent/hosts/{host}/network-services", response_model=NetworkServicesGenerations)
def network_generations(
    ctx: Ctx, agent: Agent, host: str, module: Modules = None
) -> NetworkServicesGenerations:
    """Network id -> generation, for every network of the modules: one cheap call a pass."""
    modules = ans.modules_for(ctx.db, agent, host, module or [])
    return NetworkServicesGenerations(
        modules=sorted(modules), generations=ans.generations(ctx.db, modules)
    )


@router.get("/agent/hosts/{host}/network-services/{network_id}")
def network_service(
    ctx: Ctx, agent: Agent, host: str, network_id: uuid.UUID, module: Modules = None
) -> dict[str, Any]:
    """What the node runs for one network (``NetworkService``: router ports, DHCP, DNS)."""
    modules = ans.modules_for(ctx.db, agent, host, module or [])
    return asdict(ans.service(ctx.db, ctx.settings, modules, network_id))


@router.get("/agent/hosts/{host}/route-leaks")
def route_leaks(ctx: Ctx, agent: Agent, host: str, module: Modules = None) -> list[dict[str, Any]]:
    """Approved route leaks with a side in the modules (``LeakPath``: what each routes)."""
    modules = ans.modules_for(ctx.db, agent, host, module or [])
    return [asdict(p) for p in ans.leaks(ctx.db, modules)]


@router.post("/agent/hosts/{host}/network-services/applied", response_model=NetworkServicesReported)
def report_applied(
    ctx: Ctx, agent: Agent, host: str, body: NetworkServicesApplied, module: Modules = None
) -> NetworkServicesReported:
    """The generations the node runs; networks outside the modules are ignored."""
    modules = ans.modules_for(ctx.db, agent, host, module or [])
    return NetworkServicesReported(accepted=ans.report(ctx.db, modules, body.generations))
