"""Traffic statistics from sFlow, service quality and alerts; partners see their own only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.api.schemas_traffic import (
    QualityList,
    QualityPublic,
    TrafficAlertList,
    TrafficAlertPublic,
    TrafficPublic,
)
from fuyun.services import traffic

router = APIRouter(responses=ERRORS, tags=["traffic"])
RefQ = Annotated[str | None, Query(min_length=1, max_length=64, description="a name or a UUID")]
BucketQ = Annotated[Literal["10s", "1m", "1h"], Query(description="bucket size: 10s, 1m or 1h")]


@router.get("/traffic", response_model=TrafficPublic)
def get_traffic(
    ctx: Ctx,
    who: Caller,
    tenant: RefQ = None,
    vm: RefQ = None,
    network: RefQ = None,
    bucket: BucketQ = "1m",
    since: datetime | None = None,
    until: datetime | None = None,
    top: Annotated[int, Query(ge=1, le=traffic.MAX_TOP)] = 10,
    group_by: Literal["vm", "tenant"] = "vm",
) -> TrafficPublic:
    """Top talkers and a time series of tx/rx bytes per bucket (estimates from sFlow)."""
    report = traffic.traffic_report(
        ctx.db,
        traffic.flow_store(ctx.settings, ctx.db),
        who,
        tenant=tenant,
        vm=vm,
        network=network,
        bucket=bucket,
        since=since,
        until=until,
        top=top,
        group_by=group_by,
    )
    return TrafficPublic.model_validate(report)


@router.get("/traffic/quality", response_model=QualityList)
def get_quality(
    ctx: Ctx,
    who: Caller,
    tenant: RefQ = None,
    vm: RefQ = None,
    bucket: BucketQ = "1m",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QualityList:
    """Per VM: achieved vs guaranteed rate, ceiling hits, missed buckets, errors and drops."""
    rows = traffic.quality_report(
        ctx.db,
        traffic.flow_store(ctx.settings, ctx.db),
        who,
        tenant=tenant,
        vm=vm,
        bucket=bucket,
        since=since,
        until=until,
    )
    return QualityList(items=[QualityPublic.model_validate(r) for r in rows])


@router.get("/traffic/alerts", response_model=TrafficAlertList)
def get_alerts(
    ctx: Ctx,
    who: Caller,
    kind: Literal["guarantee_missed", "link_over_threshold"] | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TrafficAlertList:
    """Broken guarantees and hot links, newest first."""
    alerts = traffic.list_alerts(ctx.db, who, kind=kind, since=since, limit=limit)
    return TrafficAlertList(items=[TrafficAlertPublic.model_validate(a) for a in alerts])
