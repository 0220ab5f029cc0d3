"""Response bodies of traffic statistics, service quality and alerts."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from fuyun.api.schemas import Out


class TrafficTopPublic(Out):
    id: uuid.UUID
    name: str
    tenant_id: uuid.UUID
    tenant: str
    tx_bytes: int
    rx_bytes: int
    tx_packets: int
    rx_packets: int
    tx_bps: float
    rx_bps: float


class TrafficPointPublic(Out):
    bucket_start: datetime
    tx_bytes: int
    rx_bytes: int


class TrafficPublic(Out):
    bucket: str
    resolution_s: int
    since: datetime
    until: datetime
    group_by: str
    tenant_id: uuid.UUID | None
    vm_id: uuid.UUID | None
    network_id: uuid.UUID | None
    top: list[TrafficTopPublic]
    series: list[TrafficPointPublic]


class QualityPublic(Out):
    vm_id: uuid.UUID
    vm: str
    tenant_id: uuid.UUID
    tenant: str
    guaranteed_bps: int
    ceiling_bps: int
    guarantee_source: str
    achieved_bps: float
    peak_bps: float
    ceiling_hits: int
    guarantee_missed: int
    in_errors: int
    out_errors: int
    discards: int


class QualityList(BaseModel):
    items: list[QualityPublic]


class TrafficAlertPublic(Out):
    id: uuid.UUID
    kind: str
    subject: str
    tenant_id: uuid.UUID | None
    vm_id: uuid.UUID | None
    bucket_start: datetime
    value_bps: float
    threshold_bps: float
    message: str
    created_at: datetime


class TrafficAlertList(BaseModel):
    items: list[TrafficAlertPublic]
