"""Record alerts once per subject and bucket, and tell a webhook about the new ones.

The unique key (kind, subject, bucket) makes recording idempotent: a replayed
flush or a second collector cannot raise the same alert twice. The webhook gets
one JSON POST per new alert; a failing receiver is counted and logged, never
retried in a loop, and never stops the collector.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import httpx
from sqlalchemy import select

from fuyun.store.engine import Database
from fuyun.store.models import TrafficAlert
from fuyun.telemetry import metrics
from fuyun.telemetry.quality import AlertDraft

log = logging.getLogger("fuyun.telemetry.alerts")


def record(db: Database, drafts: Sequence[AlertDraft]) -> list[AlertDraft]:
    """Store the drafts not stored yet; return those that are new."""
    if not drafts:
        return []
    new: list[AlertDraft] = []
    with db.write_session() as s:
        starts = {d.bucket_start for d in drafts}
        seen = {
            (kind, subject, start)
            for kind, subject, start in s.execute(
                select(TrafficAlert.kind, TrafficAlert.subject, TrafficAlert.bucket_start).where(
                    TrafficAlert.bucket_start.in_(starts)
                )
            )
        }
        for d in drafts:
            key = (d.kind, d.subject, d.bucket_start)
            if key in seen:
                continue
            seen.add(key)
            s.add(TrafficAlert(**asdict(d)))
            new.append(d)
    for d in new:
        metrics.ALERTS.labels(d.kind).inc()
    return new


def payload(d: AlertDraft) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "subject": d.subject,
        "tenant_id": str(d.tenant_id) if d.tenant_id else None,
        "vm_id": str(d.vm_id) if d.vm_id else None,
        "bucket_start": d.bucket_start.isoformat(),
        "value_bps": d.value_bps,
        "threshold_bps": d.threshold_bps,
        "message": d.message,
    }


def notify(url: str, alerts: Sequence[AlertDraft], *, timeout_s: float = 2.0) -> int:
    """POST each alert to ``url``; return how many the receiver accepted (2xx)."""
    if not url or not alerts:
        return 0
    delivered = 0
    with httpx.Client(timeout=timeout_s) as client:
        for d in alerts:
            try:
                client.post(url, json=payload(d)).raise_for_status()
                delivered += 1
            except httpx.HTTPError as exc:
                metrics.WEBHOOK_FAILURES.inc()
                log.warning("alert webhook %s failed: %s", url, exc)
    return delivered
