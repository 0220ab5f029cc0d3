"""Host capacity claimed in the database (the Omega / Placement pattern).

A placement becomes real only through :func:`claim_host`: one conditional
``UPDATE`` that succeeds only while the host is active and every dimension stays
within its limit. Any number of placers may work from stale snapshots; none can
overcommit a host.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Update, bindparam, update
from sqlalchemy.orm import Session

from fuyun.domain.enums import HostState
from fuyun.store.models import Host


@dataclass(frozen=True)
class Demand:
    vcpus: int
    ram_mb: int
    disk_gb: int
    bandwidth_mbps: int = 0
    vms: int = 1

    def __neg__(self) -> Demand:
        return Demand(-self.vcpus, -self.ram_mb, -self.disk_gb, -self.bandwidth_mbps, -self.vms)


def _claim_statement(cpu_ratio: float, ram_ratio: float) -> Update:
    """The conditional ``UPDATE`` of one host's claim, with its host and demand as
    parameters (:func:`_claim_params`): it matches only while the host is active and
    every dimension stays within its limit."""
    host = Host.__table__.c
    return (
        update(Host.__table__)
        .where(
            host.id == bindparam("h_id"),
            host.state == HostState.ACTIVE.value,
            host.vm_count + bindparam("d_vms") <= host.max_vms,
            host.used_vcpus + bindparam("d_vcpus") <= host.vcpus * cpu_ratio,
            host.used_ram_mb + bindparam("d_ram") <= host.ram_mb * ram_ratio,
            host.used_disk_gb + bindparam("d_disk") <= host.disk_gb,
            host.used_bandwidth_mbps + bindparam("d_bw") <= host.nic_mbps,
        )
        .values(
            vm_count=host.vm_count + bindparam("d_vms"),
            used_vcpus=host.used_vcpus + bindparam("d_vcpus"),
            used_ram_mb=host.used_ram_mb + bindparam("d_ram"),
            used_disk_gb=host.used_disk_gb + bindparam("d_disk"),
            used_bandwidth_mbps=host.used_bandwidth_mbps + bindparam("d_bw"),
        )
    )


def _claim_params(host_id: uuid.UUID, d: Demand) -> dict[str, object]:
    return {
        "h_id": host_id,
        "d_vms": d.vms,
        "d_vcpus": d.vcpus,
        "d_ram": d.ram_mb,
        "d_disk": d.disk_gb,
        "d_bw": d.bandwidth_mbps,
    }


def claim_host(
    session: Session, host_id: uuid.UUID, demand: Demand, *, cpu_ratio: float, ram_ratio: float
) -> bool:
    """Claim ``demand`` on the host; False when it no longer fits (nothing changed)."""
    result = session.execute(_claim_statement(cpu_ratio, ram_ratio), _claim_params(host_id, demand))
    return result.rowcount == 1  # type: ignore[attr-defined]


def claim_hosts(
    session: Session,
    claims: list[tuple[uuid.UUID, Demand]],
    *,
    cpu_ratio: float,
    ram_ratio: float,
) -> set[uuid.UUID]:
    """Claim many hosts at once; answers the hosts that refused (their claims undone).

    The statement of :func:`claim_host`, run for every host (``executemany``) in the
    order given, which is the caller's lock order. When every row matched, that was
    all; when one refused, the batch is undone (a savepoint) and the hosts are claimed
    one by one to name the refusers — the rare path, since the snapshot placed them.
    """
    if not claims:
        return set()
    if len(claims) > 1 and session.get_bind().dialect.supports_sane_multi_rowcount:
        params = [_claim_params(host_id, d) for host_id, d in claims]
        nested = session.begin_nested()
        result = session.execute(_claim_statement(cpu_ratio, ram_ratio), params)
        if result.rowcount == len(claims):  # type: ignore[attr-defined]
            nested.commit()
            return set()
        nested.rollback()
    return {
        host_id
        for host_id, d in claims
        if not claim_host(session, host_id, d, cpu_ratio=cpu_ratio, ram_ratio=ram_ratio)
    }


def release_host(session: Session, host_id: uuid.UUID, demand: Demand) -> None:
    """Give back a claim; the table's check constraints refuse going below zero."""
    session.execute(
        update(Host)
        .where(Host.id == host_id)
        .values(_deltas(-demand))
        .execution_options(synchronize_session=False)
    )


def _deltas(d: Demand) -> dict[object, object]:
    return {
        Host.vm_count: Host.vm_count + d.vms,
        Host.used_vcpus: Host.used_vcpus + d.vcpus,
        Host.used_ram_mb: Host.used_ram_mb + d.ram_mb,
        Host.used_disk_gb: Host.used_disk_gb + d.disk_gb,
        Host.used_bandwidth_mbps: Host.used_bandwidth_mbps + d.bandwidth_mbps,
    }
