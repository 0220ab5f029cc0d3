"""Schemas of the host agent API: credentials, desired state, watches and reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class AgentCredentialPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    host_id: uuid.UUID
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None


class AgentCredentialIssued(AgentCredentialPublic):
    host: str
    token: str = Field(description="the agent's secret; shown in this response only")


class DeviceDesired(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_type: str
    device_name: str
    enforcement_point: str
    flavor: str
    desired_generation: int
    applied_generation: int
    digest: str
    rendered: str


class HostDesiredState(BaseModel):
    host: str
    token: str = Field(description="resume token: pass as ?since= to watch from here")
    full: bool = Field(description="true: devices is the whole state; false: what changed")
    changed: bool
    devices: list[DeviceDesired]
    removed: list[str] = Field(description="ids (hex) of devices gone since the token")


class DeviceReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    generation: int = Field(ge=0)
    digest: str = Field(max_length=64)
    drift: dict[str, Any] | None = Field(
        None, description="what the agent observed that differs from the desired state"
    )


class AppliedReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[DeviceReport] = Field(max_length=10000)


class AppliedAnswer(BaseModel):
    host: str
    lagging: list[DeviceDesired]


class NetworkServicesGenerations(BaseModel):
    modules: list[str]
    generations: dict[str, int]


class NetworkServicesApplied(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generations: dict[uuid.UUID, Annotated[int, Field(ge=0, le=2**62)]] = Field(max_length=100_000)


class NetworkServicesReported(BaseModel):
    accepted: int
