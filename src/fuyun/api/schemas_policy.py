"""Bodies for security groups, rules, global rules, device states and verify."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from fuyun.api.schemas import In, Name, Out, Ref

Port = Annotated[int, Field(ge=1, le=65535)]


class SecurityGroupCreate(In):
    name: Name
    description: Annotated[str, Field(max_length=256)] = ""
    tenant_id: uuid.UUID | None = Field(None, description="operators only")


class RuleCreate(In):
    direction: Annotated[str, Field(pattern="^(ingress|egress)$")]
    ethertype: Annotated[int, Field(ge=4, le=6)] = 4
    protocol: Annotated[str, Field(pattern="^(any|tcp|udp|icmp)$")] = "any"
    port_min: Port | None = None
    port_max: Port | None = None
    remote_cidr: Annotated[str | None, Field(max_length=64)] = None
    remote_group: Ref | None = None
    description: Annotated[str, Field(max_length=256)] = ""


class GlobalRuleCreate(RuleCreate):
    action: Annotated[str, Field(pattern="^(allow|deny)$")]
    priority: Annotated[int, Field(ge=0, le=10000)] = 100


class RulePublic(Out):
    id: uuid.UUID
    direction: str
    ethertype: int
    protocol: str
    port_min: int | None
    port_max: int | None
    remote_cidr: str | None
    remote_group_id: uuid.UUID | None
    description: str


class GlobalRulePublic(Out):
    id: uuid.UUID
    action: str
    priority: int
    direction: str
    ethertype: int
    protocol: str
    port_min: int | None
    port_max: int | None
    remote_cidr: str | None
    description: str


class SecurityGroupPublic(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    description: str


class SecurityGroupDetail(SecurityGroupPublic):
    rules: list[RulePublic]


class PortGroups(In):
    security_groups: Annotated[list[Ref], Field(max_length=16)]


class DevicePublic(Out):
    device_type: str
    device_name: str
    enforcement_point: str
    flavor: str
    desired_generation: int
    applied_generation: int
    updated_at: datetime
    drift: dict[str, Any] | None = None
    reported_at: datetime | None = None


class AddressSetPublic(Out):
    name: str
    group_id: uuid.UUID
    tenant_id: uuid.UUID
    family: int
    generation: int
    size: int
    updated_at: datetime
    devices: int = Field(description="devices whose policy refers to the set")


class AddressSetDetail(AddressSetPublic):
    addresses: list[str]


class DeviceConfig(DevicePublic):
    rendered: str
    ports: int


class ReachPairPublic(BaseModel):
    src_tenant: str
    dst_tenant: str
    src: str
    dst: str
    src_endpoints: int
    dst_endpoints: int
    services: list[str]
    path: str
    allowed_by: list[str]


class DifferencePublic(BaseModel):
    src_ip: str
    dst_ip: str
    tenant_id: uuid.UUID
    services: list[str]
    allowed_by: list[str]


class VerifyPublic(BaseModel):
    ok: bool
    endpoints: int
    classes: int
    pairs_checked: int
    devices: int
    seconds: float
    cross_tenant: list[ReachPairPublic]
    # Cross-tenant reach that an approved route leak intends (its path names the leak).
    via_route_leaks: list[ReachPairPublic] = []
    leaks: list[DifferencePublic]
    blocks: list[DifferencePublic]
    reachable: list[ReachPairPublic]


class VerifyRunPublic(BaseModel):
    """A stored verification: when, by whom, from which compiled state, and the report."""

    id: uuid.UUID
    created_at: datetime
    created_by: str
    age_seconds: float
    basis: dict[str, Any]
    current_basis: dict[str, Any]
    stale: bool
    parameters: dict[str, Any]
    summary: dict[str, Any]
    report: VerifyPublic
