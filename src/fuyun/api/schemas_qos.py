"""Bodies for QoS policies and their attachments (rates in Mbit/s, bursts in bytes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from fuyun.api.schemas import In, Name, Out, Ref

Mbps = Annotated[int, Field(ge=0, le=400_000, description="Mbit/s")]
Burst = Annotated[int, Field(ge=0, le=1 << 30, description="bytes; 0 = the driver's default")]


class QosPolicyCreate(In):
    name: Name
    scope: Annotated[str, Field(pattern="^(port|tenant)$")] = "port"
    guarantee_mbps: Mbps = 0
    ceiling_mbps: Annotated[int, Field(ge=1, le=400_000, description="Mbit/s")]
    burst_bytes: Burst = 0
    description: Annotated[str, Field(max_length=256)] = ""
    tenant_id: uuid.UUID | None = Field(None, description="operators only")


class QosPolicyUpdate(In):
    guarantee_mbps: Mbps | None = None
    ceiling_mbps: Annotated[int | None, Field(ge=1, le=400_000)] = None
    burst_bytes: Burst | None = None
    description: Annotated[str | None, Field(max_length=256)] = None


class QosPolicyPublic(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    scope: str
    guarantee_mbps: int
    ceiling_mbps: int
    burst_bytes: int
    description: str
    created_at: datetime


class QosAttach(In):
    qos_policy: Ref | None = Field(None, description="a policy name or id; null detaches")


class QosAttached(Out):
    qos_policy: QosPolicyPublic | None
    ports: list[uuid.UUID] = Field(default_factory=list)
