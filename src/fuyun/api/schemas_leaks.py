"""Bodies for route leaks: an operator-approved route exchange between two VRFs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from fuyun.api.schemas import In, Out
from fuyun.services.route_leaks import LeakView


class RouteLeakCreate(In):
    network_id: uuid.UUID = Field(description="the requesting side's network")
    peer_network_id: uuid.UUID = Field(
        description="the other VRF's network (its owner shares the id)"
    )
    peer_prefix: Annotated[str | None, Field(max_length=64)] = Field(
        None, description="narrow the peer side to this prefix of the peer network"
    )
    description: Annotated[str, Field(max_length=256)] = ""
    approve: bool = Field(False, description="operators only: create it approved")


class RouteLeakPublic(Out):
    id: uuid.UUID
    state: str  # pending | approved
    tenant_id: uuid.UUID
    tenant: str
    network_id: uuid.UUID
    network: str
    module: str
    vrf_id: uuid.UUID
    prefixes: list[str]  # routed into the peer VRF
    peer_tenant_id: uuid.UUID
    peer_tenant: str
    peer_network_id: uuid.UUID | None
    peer_network: str
    peer_vrf_id: uuid.UUID
    peer_prefix: str | None
    peer_prefixes: list[str]  # routed into the requesting side's VRF
    description: str
    requested_by: str
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, v: LeakView) -> RouteLeakPublic:
        x = v.leak
        return cls(
            id=x.id,
            state=x.state,
            tenant_id=x.tenant_id,
            tenant=v.tenant,
            network_id=x.network_id,
            network=v.network,
            module=v.module,
            vrf_id=x.vrf_id,
            prefixes=v.prefixes,
            peer_tenant_id=x.peer_tenant_id,
            peer_tenant=v.peer_tenant,
            peer_network_id=x.peer_network_id,
            peer_network=v.peer_network,
            peer_vrf_id=x.peer_vrf_id,
            peer_prefix=x.peer_prefix,
            peer_prefixes=v.peer_prefixes,
            description=x.description,
            requested_by=x.requested_by,
            approved_by=x.approved_by,
            approved_at=x.approved_at,
            created_at=x.created_at,
        )
