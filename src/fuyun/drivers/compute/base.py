"""The compute driver contract.

Life cycle of an instance as a driver sees it::

    create ──> running ──stop──> stopped ──start──> running
       │                                              │
       └──────────────── delete (from any state) <────┘

Every method is idempotent: creating an instance that already runs with the
same spec, stopping a stopped one, or deleting a missing one succeeds and
changes nothing. That is what lets a workflow replay a step after a crash.
Failures raise :class:`fuyun.domain.errors.DriverError`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class PowerState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True)
class NicSpec:
    """One virtual NIC: the hypervisor plugs it into the host's switch with this MAC and tag."""

    port_id: uuid.UUID
    mac: str
    vlan: int
    network: str
    # The addresses IPAM gave the port, for a guest that configures itself from what
    # its hypervisor tells it (a kernel command line, a config drive) rather than DHCP.
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstanceSpec:
    """What a driver needs to run one VM on one host."""

    vm_id: uuid.UUID
    name: str
    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    image: str
    nics: tuple[NicSpec, ...] = ()


@dataclass(frozen=True)
class InstanceStatus:
    """What a driver observes of one instance."""

    vm_id: uuid.UUID
    host: str
    power: PowerState
    vcpus: int
    ram_mb: int


@dataclass(frozen=True)
class MigrationStats:
    """What a hypervisor reports of one live migration (QEMU's ``query-migrate`` figures)."""

    total_ms: float
    downtime_ms: float
    transferred_bytes: int


@runtime_checkable
class ComputeDriver(Protocol):
    name: str

    def create(self, spec: InstanceSpec) -> None:
        """Define and boot the instance; a no-op if it already runs with this spec."""

    def start(self, host: str, vm_id: uuid.UUID) -> None: ...

    def stop(self, host: str, vm_id: uuid.UUID) -> None: ...

    def reboot(self, host: str, vm_id: uuid.UUID) -> None: ...

    def resize(self, host: str, vm_id: uuid.UUID, vcpus: int, ram_mb: int) -> None:
        """Give a (stopped or running) instance new vCPU and RAM sizes; idempotent."""
        ...

    def delete(self, host: str, vm_id: uuid.UUID) -> None:
        """Destroy and undefine; a no-op if the instance does not exist."""

    def migrate(
        self,
        vm_id: uuid.UUID,
        source_host: str,
        dest_host: str,
        *,
        max_downtime_ms: int = 300,
    ) -> MigrationStats:
        """Live-migrate a running instance, keeping its power state, NIC MACs and disks.

        Idempotent: if the instance already runs on ``dest_host`` and not on
        ``source_host`` (a replay after a crash), it returns at once with zero figures.
        A failure leaves the instance running on the source.
        """
        ...

    def status(self, host: str, vm_id: uuid.UUID) -> InstanceStatus | None: ...

    def list_instances(self, host: str) -> list[InstanceStatus]:
        """Everything the hypervisor runs on ``host``, known to fuyun or not (drift)."""
        ...
