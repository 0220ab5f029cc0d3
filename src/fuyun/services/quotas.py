"""Tenant quotas, claimed in the database together with what they pay for.

A claim is one conditional ``UPDATE … WHERE used + n <= max``: with any number
of API processes racing, a limit can be reached but never passed. When the
update matches no row, the row is read to say which limit stopped it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fuyun.domain.errors import InvalidInput, NotFound, QuotaExceeded
from fuyun.store.models import Quota

RESOURCES = ("vms", "vcpus", "ram_mb", "ips", "bandwidth_mbps", "rules")

DEFAULT_LIMITS = {
    "vms": 50,
    "vcpus": 200,
    "ram_mb": 400 * 1024,
    "ips": 250,
    "bandwidth_mbps": 1000,
    "rules": 500,
}


@dataclass(frozen=True)
class Usage:
    resource: str
    limit: int
    used: int


def claim(session: Session, tenant_id: uuid.UUID, **amounts: int) -> None:
    """Add ``amounts`` to the tenant's use, or raise :class:`QuotaExceeded`."""
    deltas = {k: v for k, v in amounts.items() if v}
    _check_names(deltas)
    if not deltas:
        return
    conditions = [
        getattr(Quota, f"used_{k}") + v <= getattr(Quota, f"max_{k}")
        for k, v in deltas.items()
        if v > 0
    ]
    result = session.execute(
        update(Quota)
        .where(Quota.tenant_id == tenant_id, *conditions)
        .values({f"used_{k}": getattr(Quota, f"used_{k}") + v for k, v in deltas.items()})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return
    row = session.get(Quota, tenant_id, populate_existing=True)
    if row is None:
        raise NotFound("tenant has no quota record", field="tenant")
    for k, v in deltas.items():
        used, limit = getattr(row, f"used_{k}"), getattr(row, f"max_{k}")
        if v > 0 and used + v > limit:
            raise QuotaExceeded(
                f"quota exceeded for {k}: {used} used + {v} requested > limit {limit}", field=k
            )
    raise QuotaExceeded("quota claim lost a race; retry", field=None)  # pragma: no cover


def release(session: Session, tenant_id: uuid.UUID, **amounts: int) -> None:
    """Give back what :func:`claim` took. Never lets use go below zero."""
    claim(session, tenant_id, **{k: -abs(v) for k, v in amounts.items()})


def usage(session: Session, tenant_id: uuid.UUID) -> list[Usage]:
    row = session.scalar(select(Quota).where(Quota.tenant_id == tenant_id))
    if row is None:
        raise NotFound("tenant has no quota record", field="tenant")
    return [Usage(k, getattr(row, f"max_{k}"), getattr(row, f"used_{k}")) for k in RESOURCES]


def set_limits(session: Session, tenant_id: uuid.UUID, limits: dict[str, int]) -> Quota:
    """Change limits; a limit below current use is refused, naming the resource."""
    _check_names(limits)
    row = session.get(Quota, tenant_id, with_for_update=True)
    if row is None:
        raise NotFound("tenant has no quota record", field="tenant")
    for k, v in limits.items():
        if v < 0:
            raise InvalidInput(f"{k} must not be negative", field=k)
        used = getattr(row, f"used_{k}")
        if v < used:
            raise InvalidInput(f"{k} limit {v} is below current use {used}", field=k)
        setattr(row, f"max_{k}", v)
    return row


def _check_names(amounts: dict[str, int]) -> None:
    for k in amounts:
        if k not in RESOURCES:
            raise InvalidInput(f"unknown quota resource '{k}'", field=k)
