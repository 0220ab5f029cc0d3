"""Traffic statistics, service quality and alerts, scoped to who asks.

Partners see only their own tenant: a partner naming another tenant, or another
tenant's VM or network, gets 404 — the same answer as for something that does
not exist, so nothing leaks. Operators (and tenant-less viewers) see all and may
group by tenant to find who fills the fabric.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select

from fuyun.config import Settings
from fuyun.domain.errors import InvalidInput, NotFound
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Network, Tenant, TrafficAlert, Vm
from fuyun.store.types import utcnow
from fuyun.telemetry.collector import Collector
from fuyun.telemetry.dbstore import DatabaseFlowStore
from fuyun.telemetry.flowstore import FlowStore, Total, TrafficQuery
from fuyun.telemetry.guarantees import guarantees_for
from fuyun.telemetry.quality import VmQuality, evaluate

BUCKETS: dict[str, int] = {"10s": 10, "1m": 60, "1h": 3600}
DEFAULT_WINDOW_BUCKETS = 60  # a chart of 60 points: 10 min, 1 h or 2.5 days
MAX_WINDOW_BUCKETS = 2000
MAX_TOP = 1000


@dataclass(frozen=True)
class Point:
    bucket_start: datetime
    tx_bytes: int
    rx_bytes: int


@dataclass(frozen=True)
class TopEntry:
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


@dataclass
class TrafficReport:
    bucket: str
    resolution_s: int
    since: datetime
    until: datetime
    group_by: str
    tenant_id: uuid.UUID | None
    vm_id: uuid.UUID | None
    network_id: uuid.UUID | None
    top: list[TopEntry] = field(default_factory=list)
    series: list[Point] = field(default_factory=list)
    # With ``top_tenants``: the busiest tenants, rolled up from the same per-VM sums.
    top_tenants: list[TopEntry] = field(default_factory=list)


@dataclass(frozen=True)
class Scope:
    tenant_id: uuid.UUID | None
    vm_id: uuid.UUID | None
    network_id: uuid.UUID | None


def _uuid_or_none(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def resolve_scope(
    db: Database,
    who: Principal,
    *,
    tenant: str | None = None,
    vm: str | None = None,
    network: str | None = None,
) -> Scope:
    """Names or ids to ids, inside what ``who`` may see; 404 for the rest."""
    with db.read_session() as s:
        tenant_id = None if who.sees_everything else who.tenant_id
        if tenant:
            ref = _uuid_or_none(tenant)
            t = s.scalar(select(Tenant).where(Tenant.id == ref if ref else Tenant.name == tenant))
            if t is None or not who.may_see_tenant(t.id):
                raise NotFound(f"tenant '{tenant}' not found", field="tenant")
            tenant_id = t.id
        vm_id = network_id = None
        if vm:
            ref = _uuid_or_none(vm)
            stmt = who.scope(select(Vm).where(Vm.id == ref if ref else Vm.name == vm), Vm.tenant_id)
            if tenant_id is not None:
                stmt = stmt.where(Vm.tenant_id == tenant_id)
            found = s.scalars(stmt.limit(2)).all()
            if not found:
                raise NotFound(f"VM '{vm}' not found", field="vm")
            if len(found) > 1:
                raise InvalidInput(f"VM name '{vm}' is ambiguous; give its id", field="vm")
            vm_id = found[0].id
        if network:
            ref = _uuid_or_none(network)
            stmt = who.scope(
                select(Network).where(Network.id == ref if ref else Network.name == network),
                Network.tenant_id,
            )
            if tenant_id is not None:
                stmt = stmt.where(Network.tenant_id == tenant_id)
            nets = s.scalars(stmt.limit(2)).all()
            if not nets:
                raise NotFound(f"network '{network}' not found", field="network")
            if len(nets) > 1:
                raise InvalidInput(f"network name '{network}' is ambiguous", field="network")
            network_id = nets[0].id
    return Scope(tenant_id, vm_id, network_id)


def window(
    bucket: str, since: datetime | None, until: datetime | None
) -> tuple[int, datetime, datetime]:
    if bucket not in BUCKETS:
        raise InvalidInput(f"bucket must be one of {', '.join(BUCKETS)}", field="bucket")
    res = BUCKETS[bucket]
    until = until or utcnow()
    since = since or until - timedelta(seconds=res * DEFAULT_WINDOW_BUCKETS)
    if since.tzinfo is None or until.tzinfo is None:
        raise InvalidInput("times need a zone (UTC, e.g. 2026-01-01T00:00:00Z)", field="since")
    if since >= until:
        raise InvalidInput("since must be before until", field="since")
    if (until - since).total_seconds() > res * MAX_WINDOW_BUCKETS:
        raise InvalidInput(
            f"window spans more than {MAX_WINDOW_BUCKETS} buckets of {bucket}", field="since"
        )
    return res, since, until


def traffic_report(
    db: Database,
    store: FlowStore,
    who: Principal,
    *,
    tenant: str | None = None,
    vm: str | None = None,
    network: str | None = None,
    bucket: str = "1m",
    since: datetime | None = None,
    until: datetime | None = None,
    top: int = 10,
    group_by: Literal["vm", "tenant"] = "vm",
    with_series: bool = True,
    top_tenants: int = 0,
) -> TrafficReport:
    """The busiest VMs (or tenants) of the window and, unless ``with_series`` is off, the
    scope's rate per bucket — summed in the store, never row by row here.

    ``top_tenants`` (with ``group_by="vm"``) adds the busiest tenants too, rolled up here
    from every VM's sums of the same single pass over the window, instead of a second
    pass grouped by tenant (the operator's overview shows both)."""
    if not 1 <= top <= MAX_TOP:
        raise InvalidInput(f"top must be 1..{MAX_TOP}", field="top")
    if group_by not in ("vm", "tenant"):
        raise InvalidInput("group_by must be vm or tenant", field="group_by")
    if not 0 <= top_tenants <= MAX_TOP:
        raise InvalidInput(f"top_tenants must be 0..{MAX_TOP}", field="top_tenants")
    scope = resolve_scope(db, who, tenant=tenant, vm=vm, network=network)
    res, since, until = window(bucket, since, until)
    q = TrafficQuery(res, since, until, scope.tenant_id, scope.vm_id, scope.network_id)
    tenant_totals: list[Total] = []
    if top_tenants and group_by == "vm":
        every_vm = store.top(q, by="vm", limit=_EVERY)
        totals = every_vm[:top]
        tenant_totals = roll_up(every_vm)[:top_tenants]
    else:
        totals = store.top(q, by=group_by, limit=top)
    span = (until - since).total_seconds()
    both = totals + tenant_totals
    names = _names(db, {t.key for t in both} | {t.tenant_id for t in both})
    series = [Point(b, tx, rx) for b, tx, rx in store.per_bucket(q)] if with_series else []
    return TrafficReport(
        bucket,
        res,
        since,
        until,
        group_by,
        scope.tenant_id,
        scope.vm_id,
        scope.network_id,
        _entries(totals, names, span),
        series,
        _entries(tenant_totals, names, span),
    )


_EVERY = 2**31 - 1  # no limit: every VM of the window, for the tenant roll-up


def roll_up(vms: list[Total]) -> list[Total]:
    """Per-VM totals summed by tenant, busiest first (ties by id), as the store would."""
    sums: dict[uuid.UUID, list[int]] = {}
    for t in vms:
        acc = sums.setdefault(t.tenant_id, [0, 0, 0, 0, 0])
        for i, v in enumerate((t.tx_bytes, t.rx_bytes, t.tx_packets, t.rx_packets, t.samples)):
            acc[i] += v
    out = [Total(k, k, *v) for k, v in sums.items()]
    out.sort(key=lambda t: (-(t.tx_bytes + t.rx_bytes), t.key))
    return out


def _entries(totals: list[Total], names: dict[uuid.UUID, str], span: float) -> list[TopEntry]:
    return [
        TopEntry(
            t.key,
            names.get(t.key, str(t.key)),
            t.tenant_id,
            names.get(t.tenant_id, str(t.tenant_id)),
            t.tx_bytes,
            t.rx_bytes,
            t.tx_packets,
            t.rx_packets,
            t.tx_bytes * 8 / span,
            t.rx_bytes * 8 / span,
        )
        for t in totals
    ]


def _names(db: Database, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    with db.read_session() as s:
        out = {k: v for k, v in s.execute(select(Vm.id, Vm.name).where(Vm.id.in_(ids)))}
        out.update(
            {k: v for k, v in s.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(ids)))}
        )
    return out


@dataclass(frozen=True)
class QualityEntry:
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


def quality_report(
    db: Database,
    store: FlowStore,
    who: Principal,
    *,
    tenant: str | None = None,
    vm: str | None = None,
    bucket: str = "1m",
    since: datetime | None = None,
    until: datetime | None = None,
    among: frozenset[uuid.UUID] | None = None,
) -> list[QualityEntry]:
    """Per VM: achieved vs guaranteed, ceiling hits, missed buckets, port errors and drops.

    ``among`` judges only those VMs (a page passes the busiest ones its traffic report
    found), so a page's cost does not grow with the tenant or the fabric; without it,
    every VM in scope is judged (the API, the CLI).
    """
    scope = resolve_scope(db, who, tenant=tenant, vm=vm)
    res, since, until = window(bucket, since, until)
    q = TrafficQuery(res, since, until, scope.tenant_id, scope.vm_id)
    if among is not None:
        q = replace(q, vm_ids=among)
    rows, interfaces = store.series(q), store.interfaces(q)
    vm_ids = {r.vm_id for r in rows} | {i.vm_id for i in interfaces if i.vm_id}
    guarantees = guarantees_for(db, vm_ids)
    judged: list[VmQuality] = evaluate(
        rows, interfaces, guarantees, resolution_s=res, window_s=(until - since).total_seconds()
    )
    names = _names(db, vm_ids | {j.tenant_id for j in judged})
    return [
        QualityEntry(
            j.vm_id,
            names.get(j.vm_id, str(j.vm_id)),
            j.tenant_id,
            names.get(j.tenant_id, str(j.tenant_id)),
            j.guaranteed_bps,
            j.ceiling_bps,
            guarantees[j.vm_id].source if j.vm_id in guarantees else "none",
            j.achieved_bps,
            j.peak_bps,
            j.ceiling_hits,
            j.guarantee_missed,
            j.in_errors,
            j.out_errors,
            j.discards,
        )
        for j in judged
        if who.may_see_tenant(j.tenant_id)
    ]


def list_alerts(
    db: Database,
    who: Principal,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[TrafficAlert]:
    """Newest first. Partners see alerts about their own VMs and ports only."""
    if kind is not None and kind not in ("guarantee_missed", "link_over_threshold"):
        raise InvalidInput("kind must be guarantee_missed or link_over_threshold", field="kind")
    stmt = select(TrafficAlert)
    if not who.sees_everything:
        stmt = stmt.where(TrafficAlert.tenant_id == who.tenant_id)
    if kind:
        stmt = stmt.where(TrafficAlert.kind == kind)
    if since:
        stmt = stmt.where(TrafficAlert.bucket_start >= since)
    with db.read_session() as s:
        return list(
            s.scalars(stmt.order_by(TrafficAlert.created_at.desc(), TrafficAlert.id).limit(limit))
        )


def flow_store(settings: Settings, db: Database) -> FlowStore:
    """The flow store ``settings.flow_store`` names; only ``database`` ships today."""
    if settings.flow_store == "database":
        return DatabaseFlowStore(db)
    raise InvalidInput(
        f"unknown flow store '{settings.flow_store}' (known: database)", field="flow_store"
    )


def make_collector(settings: Settings, db: Database) -> Collector:
    """A collector wired to the configured flow store, webhook and link threshold."""
    if not 0 < settings.link_alert_threshold <= 1:
        raise InvalidInput(
            "link alert threshold is a share of link speed, in (0, 1]",
            field="link_alert_threshold",
        )
    if settings.alert_webhook_url and not settings.alert_webhook_url.startswith(
        ("http://", "https://")
    ):
        raise InvalidInput("alert webhook URL must be http(s)", field="alert_webhook_url")
    return Collector(
        db,
        flow_store(settings, db),
        webhook_url=settings.alert_webhook_url,
        link_threshold=settings.link_alert_threshold,
    )
