"""Host agents: per-host credentials (operators), and the agent's read/watch/report API.

``/agent/hosts/{host}/…`` accepts the host's own agent credential (``fyh_…``) or an
operator's token; the general API never accepts an agent credential.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fuyun.api.deps import Caller, Ctx, get_context
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas_agents import (
    AgentCredentialIssued,
    AgentCredentialPublic,
    AppliedAnswer,
    AppliedReport,
    DeviceDesired,
    HostDesiredState,
)
from fuyun.domain.errors import Unauthenticated
from fuyun.services import agents
from fuyun.services.identity import authenticate

router = APIRouter(responses=ERRORS, tags=["agents"])
_bearer = HTTPBearer(auto_error=False, description="a host agent credential `fyh_…`")
WATCH_POLL_S = 0.25


def get_agent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> agents.AgentPrincipal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token")
    secret = credentials.credentials
    db = get_context(request).db
    if secret.startswith(agents.HOST_TOKEN_PREFIX):
        return agents.authenticate_host(db, secret)
    principal = authenticate(db, secret)
    principal.require_operator()
    return agents.AgentPrincipal(None, None, operator=principal)


Agent = Annotated[agents.AgentPrincipal, Depends(get_agent)]


def _state(state: agents.HostState) -> HostDesiredState:
    return HostDesiredState(
        host=state.host,
        token=state.token,
        full=state.full,
        changed=state.changed,
        devices=[DeviceDesired.model_validate(d) for d in state.devices],
        removed=state.removed,
    )


@router.post(
    "/hosts/{host}/agent-credentials",
    response_model=AgentCredentialIssued,
    status_code=status.HTTP_201_CREATED,
)
def create_agent_credential(ctx: Ctx, who: Caller, host: str) -> AgentCredentialIssued:
    """A credential for the host's agent; the secret is in this response only."""
    issued = agents.issue_credential(ctx.db, who, host)
    base = AgentCredentialPublic.model_validate(issued.credential).model_dump()
    return AgentCredentialIssued(**base, host=issued.host_name, token=issued.secret)


@router.get("/hosts/{host}/agent-credentials", response_model=list[AgentCredentialPublic])
def list_agent_credentials(ctx: Ctx, who: Caller, host: str) -> list[AgentCredentialPublic]:
    return [
        AgentCredentialPublic.model_validate(c) for c in agents.list_credentials(ctx.db, who, host)
    ]


@router.delete("/agent-credentials/{credential_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_agent_credential(ctx: Ctx, who: Caller, credential_id: uuid.UUID) -> None:
    agents.revoke_credential(ctx.db, who, credential_id)


@router.get("/agent/hosts/{host}/desired-state", response_model=HostDesiredState)
def get_desired_state(ctx: Ctx, agent: Agent, host: str) -> HostDesiredState:
    """The host's whole desired state and a token to watch for changes from."""
    row = agents.resolve_host(ctx.db, agent, host)
    return _state(agents.desired_state(ctx.db, row))


@router.get("/agent/hosts/{host}/watch", response_model=HostDesiredState)
async def watch_desired_state(
    ctx: Ctx,
    agent: Agent,
    host: str,
    since: Annotated[str, Query(max_length=20000, description="a token from a previous answer")],
    timeout_s: Annotated[float, Query(ge=0, le=300)] = 25.0,
) -> HostDesiredState:
    """Long-poll: answer as soon as a device of the host changed since ``since``, or after
    ``timeout_s`` with ``changed: false`` and the same token. Safe to resume on any
    controller after any restart: the token says everything the server needs."""
    row = await run_in_threadpool(agents.resolve_host, ctx.db, agent, host)
    agents.decode_token(since)  # a bad token is a 422 now, not after the wait
    deadline = time.monotonic() + min(timeout_s, ctx.settings.agent_watch_max_s)
    while await run_in_threadpool(agents.unchanged, ctx.db, row, since):
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(WATCH_POLL_S)
    return _state(await run_in_threadpool(agents.desired_state, ctx.db, row, since))


@router.post("/agent/hosts/{host}/applied", response_model=AppliedAnswer)
def report_applied(ctx: Ctx, agent: Agent, host: str, body: AppliedReport) -> AppliedAnswer:
    """What the agent applied (generation and digest per device) and any drift it saw."""
    row = agents.resolve_host(ctx.db, agent, host)
    lagging = agents.report_applied(
        ctx.db,
        row,
        [agents.Report(d.id, d.generation, d.digest, d.drift) for d in body.devices],
    )
    return AppliedAnswer(host=row.name, lagging=[DeviceDesired.model_validate(d) for d in lagging])
