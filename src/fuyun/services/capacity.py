"""Host capacity claimed in the database (the Omega / Placement pattern).

A placement becomes real only through :func:`claim_host`: one conditional
``UPDATE`` that succeeds only while the host is active and every dimension stays
within its limit. Any number of placers may work from stale snapshots; none can
overcommit a host.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import update
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


def claim_host(
    session: Session, host_id: uuid.UUID, demand: Demand, *, cpu_ratio: float, ram_ratio: float
) -> bool:
    """Claim ``demand`` on the host; False when it no longer fits (nothing changed)."""
    result = session.execute(
        update(Host)
        .where(
            Host.id == host_id,
            Host.state == HostState.ACTIVE.value,
            Host.vm_count + demand.vms <= Host.max_vms,
            Host.used_vcpus + demand.vcpus <= Host.vcpus * cpu_ratio,
            Host.used_ram_mb + demand.ram_mb <= Host.ram_mb * ram_ratio,
            Host.used_disk_gb + demand.disk_gb <= Host.disk_gb,
            Host.used_bandwidth_mbps + demand.bandwidth_mbps <= Host.nic_mbps,
        )
        .values(_deltas(demand))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


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
