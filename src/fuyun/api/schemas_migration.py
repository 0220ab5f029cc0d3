"""Bodies of the migration resources: plans, moves, batches, site evacuation plans."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from fuyun.api.schemas import In, Out, Ref


class MigrationTarget(In):
    """Where to: one host (``to``) or a scope for the scheduler; nothing means anywhere."""

    to: Ref | None = Field(None, description="target host (name or id)")
    to_tor: Ref | None = None
    to_module: Ref | None = None
    to_site: Ref | None = None


class MigrateIn(MigrationTarget):
    max_downtime_ms: Annotated[int, Field(ge=1, le=60_000)] = 300


class TableChangePublic(BaseModel):
    switch: str
    table: str
    used: int
    after: int
    capacity: int


class PortMovePublic(BaseModel):
    port_id: str
    network: str
    vlan: int
    mac: str
    ips: list[str]
    span: str
    interconnect: str | None
    extend: list[TableChangePublic]
    shrink: list[TableChangePublic]


class MigrationPlanPublic(BaseModel):
    vm_id: str
    vm: str
    state: str
    source_host: str
    source_tor: str
    target_host: str | None
    target_tor: str | None
    scope: Literal["same-tor", "same-module", "cross-module", "cross-site"] | None
    feasible: bool
    keeps_ip: bool
    chosen_by: str
    reasons: list[str]
    changes: list[str]
    ports: list[PortMovePublic]
    devices: list[str]
    notes: list[str]


class MigrationResultPublic(BaseModel):
    workflow_id: uuid.UUID
    state: str
    plan: MigrationPlanPublic
    stats: dict[str, Any]


class MigrationPublic(BaseModel):
    id: uuid.UUID
    vm_id: str
    state: str
    target: str | None
    scope: str | None
    error: str | None
    progress: float
    steps: list[dict[str, str]]
    created_at: datetime
    # QEMU's (the compute driver's) figures once the VM has moved: total_ms, downtime_ms, …
    stats: dict[str, Any] = {}


class BatchIn(In):
    per_host: Annotated[int, Field(ge=1, le=64)] = 2
    per_tor: Annotated[int, Field(ge=1, le=64)] = 4
    per_site: Annotated[int, Field(ge=1, le=64)] = 16
    workers: Annotated[int, Field(ge=1, le=64)] = 4


class BatchPublic(Out):
    id: uuid.UUID
    kind: str
    target: str
    state: str
    actor: str
    total: int
    moved: int
    failed: int
    items: list[dict[str, Any]]
    limits: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SiteVmPublic(BaseModel):
    vm_id: str
    vm: str
    tenant: str
    host: str
    keeps_ip: bool
    target_host: str | None
    interconnects: list[str]
    reasons: list[str]


class HaGroupPublic(BaseModel):
    group: str
    tenant: str
    policy: str
    level: str
    in_site: int
    elsewhere: int
    survives: bool


class SiteEvacuationPlanPublic(BaseModel):
    site: str
    to_site: str | None
    keep_ip: int
    readdress: int
    vms: list[SiteVmPublic]
    groups: list[HaGroupPublic]
