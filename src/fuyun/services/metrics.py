"""Prometheus metrics: process counters in the default registry, store gauges on scrape.

Counters live in ``prometheus_client``'s default registry, so any module that
defines its own appears on ``/metrics`` beside these. What is true of the whole
deployment rather than of one process — the workflow queue, how far each host's
devices lag — is read from the store when scraped (:class:`StoreCollector`), so
every API process reports the same figures.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Host, Port, Workflow
from fuyun.store.types import utcnow

ALLOCATION_CONFLICTS = Counter(
    "fuyun_allocation_conflicts_retried_total",
    "Allocations that lost a race in the store (unique index or conditional claim) and were"
    " retried with another candidate",
    ["kind"],
)
QUEUED_STATES = ("pending", "running", "rolling_back")
# Hosts with the most lag first; the rest are summed in one "other" series, so a
# fleet-wide outage does not turn into 100,000 series.
MAX_HOST_SERIES = 500


def conflict_retried(kind: str) -> None:
    """Count one lost allocation race (``host``, ``mac``, ``vlan``, ``address``)."""
    ALLOCATION_CONFLICTS.labels(kind=kind).inc()


class StoreCollector(Collector):
    """Workflow queue depth and age, and reconcile lag per host, read at scrape time."""

    def __init__(self, db: Database):
        self.db = db

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        depth = GaugeMetricFamily(
            "fuyun_workflow_queue_depth", "Unfinished workflows by state", labels=["state"]
        )
        age = GaugeMetricFamily(
            "fuyun_workflow_queue_oldest_age_seconds",
            "Age of the oldest unfinished workflow by state",
            labels=["state"],
        )
        with self.db.read_session() as s:
            rows = {
                state: (count, oldest)
                for state, count, oldest in s.execute(
                    select(Workflow.state, func.count(), func.min(Workflow.created_at))
                    .where(Workflow.state.in_(QUEUED_STATES))
                    .group_by(Workflow.state)
                )
            }
            lag_rows = list(
                s.execute(
                    select(
                        DeviceState.device_type,
                        DeviceState.device_name,
                        DeviceState.desired_generation - DeviceState.applied_generation,
                        DeviceState.updated_at,
                    ).where(DeviceState.applied_generation < DeviceState.desired_generation)
                )
            )
            guest_ports = [r[1] for r in lag_rows if r[0] == "guest"]
            host_of_port = _hosts_of_ports(s, guest_ports)
        for state in QUEUED_STATES:
            count, oldest = rows.get(state, (0, None))
            depth.add_metric([state], count)
            age.add_metric([state], (now - _aware(oldest)).total_seconds() if oldest else 0.0)
        yield depth
        yield age
        yield from _lag_metrics(lag_rows, host_of_port, now)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _hosts_of_ports(s: Session, port_names: list[str]) -> dict[str, str]:
    ids = []
    for name in port_names:
        try:
            ids.append(uuid.UUID(name))
        except ValueError:
            continue
    if not ids:
        return {}
    return {
        str(pid): hname
        for pid, hname in s.execute(
            select(Port.id, Host.name).join(Host, Host.id == Port.host_id).where(Port.id.in_(ids))
        )
    }


def _lag_metrics(
    lag_rows: list[Any], host_of_port: dict[str, str], now: datetime
) -> Iterator[Metric]:
    generations: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    for dtype, name, behind, updated in lag_rows:
        if dtype == "host":
            host = name
        elif dtype == "guest":
            host = host_of_port.get(name, "unbound")
        else:
            host = f"{dtype}:{name}"  # a switch converges for many hosts: its own series
        generations[host] += int(behind)
        seconds[host] = max(seconds[host], (now - _aware(updated)).total_seconds())
    gens = GaugeMetricFamily(
        "fuyun_reconcile_lag_generations",
        "Desired minus applied generations summed over a host's devices (lagging hosts only)",
        labels=["host"],
    )
    secs = GaugeMetricFamily(
        "fuyun_reconcile_lag_seconds",
        "Seconds since the oldest unapplied desired state of a host's devices was written",
        labels=["host"],
    )
    ranked = sorted(generations, key=lambda h: (-generations[h], h))
    for host in ranked[:MAX_HOST_SERIES]:
        gens.add_metric([host], generations[host])
        secs.add_metric([host], seconds[host])
    rest = ranked[MAX_HOST_SERIES:]
    if rest:
        gens.add_metric(["other"], sum(generations[h] for h in rest))
        secs.add_metric(["other"], max(seconds[h] for h in rest))
    total = GaugeMetricFamily(
        "fuyun_reconcile_lagging_devices", "Devices whose applied generation is behind"
    )
    total.add_metric([], len(lag_rows))
    yield gens
    yield secs
    yield total
