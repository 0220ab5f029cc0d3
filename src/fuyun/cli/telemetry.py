"""``fuyun traffic`` (statistics, quality, alerts over the API) and ``fuyun collector``."""

from __future__ import annotations

from typing import Annotated

import typer

from fuyun.cli.client import call, err, fail, out
from fuyun.cli.tables import show

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
BucketOpt = Annotated[str, typer.Option(help="bucket size: 10s, 1m or 1h")]
SinceOpt = Annotated[str | None, typer.Option(help="ISO 8601 start, e.g. 2026-11-26T10:00:00Z")]

traffic_app = typer.Typer(
    help="Traffic per tenant and VM from sFlow; service quality; alerts.",
    invoke_without_command=True,
)


def _rate(bps: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.2f} {unit}"
    return f"{bps:.0f} bit/s"


@traffic_app.callback()
def traffic(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="tenant name or id")] = None,
    vm: Annotated[str | None, typer.Option(help="VM name or id")] = None,
    network: Annotated[str | None, typer.Option(help="network name or id")] = None,
    bucket: BucketOpt = "1m",
    since: SinceOpt = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 end; default now")] = None,
    top: Annotated[int, typer.Option("--top", help="the N largest")] = 10,
    by: Annotated[str, typer.Option("--by", help="group by vm or tenant")] = "vm",
    as_json: JsonOpt = False,
) -> None:
    """Top talkers over a window (default: the last 60 buckets), tx and rx."""
    if ctx.invoked_subcommand is not None:
        return
    if top < 1:
        raise fail("--top must be at least 1")
    report = call(
        "GET",
        "/traffic",
        params={
            "tenant": tenant,
            "vm": vm,
            "network": network,
            "bucket": bucket,
            "since": since,
            "until": until,
            "top": top,
            "group_by": by,
        },
    )
    if as_json:
        out.print_json(data=report)
        return
    rows = [
        {
            **e,
            "tx": _rate(e["tx_bps"]),
            "rx": _rate(e["rx_bps"]),
            "tx_bytes": f"{e['tx_bytes']:,}",
            "rx_bytes": f"{e['rx_bytes']:,}",
        }
        for e in report["top"]
    ]
    columns = ["name", "tenant", "tx", "rx", "tx_bytes", "rx_bytes"]
    show(
        rows,
        columns if by == "vm" else columns[:1] + columns[2:],
        title=f"traffic {report['since']} .. {report['until']} ({report['bucket']} buckets)",
    )


@traffic_app.command("quality")
def quality(
    tenant: Annotated[str | None, typer.Option(help="tenant name or id")] = None,
    vm: Annotated[str | None, typer.Option(help="VM name or id")] = None,
    bucket: BucketOpt = "1m",
    since: SinceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Achieved vs guaranteed rate per VM, ceiling hits, missed buckets, errors and drops."""
    items = call(
        "GET",
        "/traffic/quality",
        params={"tenant": tenant, "vm": vm, "bucket": bucket, "since": since},
    )["items"]
    if as_json:
        out.print_json(data=items)
        return
    rows = [
        {
            **q,
            "achieved": _rate(q["achieved_bps"]),
            "peak": _rate(q["peak_bps"]),
            "guaranteed": _rate(q["guaranteed_bps"]) if q["guaranteed_bps"] else "-",
            "ceiling": _rate(q["ceiling_bps"]) if q["ceiling_bps"] else "-",
        }
        for q in items
    ]
    show(
        rows,
        [
            "vm",
            "tenant",
            "achieved",
            "peak",
            "guaranteed",
            "ceiling",
            "ceiling_hits",
            "guarantee_missed",
            "discards",
            "in_errors",
            "out_errors",
        ],
    )


@traffic_app.command("alerts")
def alerts(
    kind: Annotated[
        str | None, typer.Option(help="guarantee_missed or link_over_threshold")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Service-quality alerts, newest first."""
    items = call("GET", "/traffic/alerts", params={"kind": kind, "limit": limit})["items"]
    show(items, ["bucket_start", "kind", "subject", "message"], as_json=as_json)


def collector(
    host: Annotated[str, typer.Option(help="address to listen on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="UDP port")] = 6343,
    pcap: Annotated[
        str | None, typer.Option(help="replay this capture of sFlow datagrams and exit")
    ] = None,
    flush_s: Annotated[float, typer.Option(help="seconds between flushes to the store")] = 5.0,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="FUYUN_DATABASE_URL", help="SQLAlchemy URL; SQLite file by default"),
    ] = None,
) -> None:
    """Receive sFlow v5 on UDP, attribute to tenants/VMs, roll up into the flow store."""
    import asyncio

    from fuyun.config import Settings
    from fuyun.domain.errors import FuyunError
    from fuyun.services.traffic import make_collector
    from fuyun.store.engine import Database
    from fuyun.store.migrate import upgrade

    try:
        settings = Settings.from_env(database_url=database_url)
        db = Database(settings.database_url)
        upgrade(db.engine)
        c = make_collector(settings, db)
    except (FuyunError, ValueError) as exc:
        raise fail(getattr(exc, "message", str(exc))) from exc
    if pcap:
        try:
            result = c.replay(pcap)
        except (OSError, ValueError) as exc:
            raise fail(f"--pcap: {exc}") from exc
        t = c.tally
        out.print(
            f"{t.datagrams} datagrams ({t.malformed} malformed), {t.flow_samples} flow and "
            f"{t.counter_samples} counter samples; {t.attributed} attributed; "
            f"{result.traffic_rows} traffic rows, {len(result.alerts)} alerts"
        )
        return
    from fuyun.telemetry.collector import serve as serve_udp

    err.print(f"collector listening on udp {host}:{port}")
    try:
        asyncio.run(serve_udp(c, host, port, flush_s=flush_s))
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc}") from exc
    except KeyboardInterrupt:
        pass
