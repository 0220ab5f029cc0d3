"""Traffic charts per tenant and VM, service quality and alerts — the portal's sFlow view."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fuyun.domain.errors import InvalidInput
from fuyun.portal.charts import bar_chart, rate_chart, rate_text
from fuyun.portal.rendering import PortalRoute, render
from fuyun.portal.session import Reader, context
from fuyun.services import traffic

router = APIRouter(route_class=PortalRoute)
TOP = 10
QUALITY = 25  # VMs judged in the service-quality table: the busiest of the window


@router.get("/traffic")
def traffic_page(
    request: Request, visitor: Reader, bucket: str = "1m", tenant: str = "", vm: str = ""
) -> Response:
    ctx, who = context(request), visitor.principal
    if bucket not in traffic.BUCKETS:
        raise InvalidInput("bucket must be 10s, 1m or 1h", field="bucket")
    store = traffic.flow_store(ctx.settings, ctx.db)
    scope = {"tenant": tenant.strip() or None, "vm": vm.strip() or None}
    # The busiest VMs once: the chart shows the first TOP, quality judges them all; the
    # operator's overview rolls the busiest tenants up from the same pass over the window.
    overview = who.sees_everything and not scope["tenant"] and not scope["vm"]
    busiest = traffic.traffic_report(
        ctx.db, store, who, bucket=bucket, top=QUALITY, top_tenants=TOP if overview else 0,
        **scope,
    )  # fmt: skip
    report = replace(busiest, top=busiest.top[:TOP])
    res = report.resolution_s
    series = rate_chart(
        f"Traffic per {bucket} bucket" + (f" of {vm}" if vm else ""),
        [p.bucket_start for p in report.series],
        [
            ("sent (tx)", "tx", [p.tx_bytes * 8 / res for p in report.series]),
            ("received (rx)", "rx", [p.rx_bytes * 8 / res for p in report.series]),
        ],
    )
    vms = bar_chart(
        "Top VMs by mean rate over the window",
        [
            (f"{e.name} ({e.tenant})" if who.sees_everything else e.name, e.tx_bps, e.rx_bps)
            for e in report.top
        ],
    )
    tenants_chart = None
    if overview:
        tenants_chart = bar_chart(
            "Top tenants by mean rate over the window",
            [(e.name, e.tx_bps, e.rx_bps) for e in busiest.top_tenants],
        )
    among = frozenset(e.id for e in busiest.top)
    quality = traffic.quality_report(ctx.db, store, who, bucket=bucket, among=among, **scope)
    alerts = traffic.list_alerts(ctx.db, who, limit=20)
    return render(
        request,
        "traffic.html",
        report=report,
        series_chart=series,
        vm_chart=vms,
        tenant_chart=tenants_chart,
        quality=quality,
        quality_of=QUALITY,
        alerts=alerts,
        buckets=list(traffic.BUCKETS),
        bucket=bucket,
        tenant=tenant,
        vm=vm,
        rate=rate_text,
    )
