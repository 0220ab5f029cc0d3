"""The ``fake`` compute driver: a complete in-memory hypervisor, shipped as a real driver.

It keeps instances per host behind a lock, honours the whole contract
(idempotence included), and can be told to fail a named operation, so that
rollback paths are tested with the same driver the laptop default runs.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import deque

from fuyun.domain.errors import DriverError
from fuyun.drivers.compute.base import InstanceSpec, InstanceStatus, MigrationStats, PowerState


class FakeComputeDriver:
    name = "fake"

    def __init__(self, *, delay_s: float | None = None) -> None:
        self._lock = threading.Lock()
        self._hosts: dict[str, dict[uuid.UUID, InstanceStatus]] = {}
        self.fail_on: dict[str, str] = {}  # operation -> message; for rollback tests
        # The most recent operations, for tests; bounded so a long-running server does not grow.
        self.calls: deque[tuple[str, uuid.UUID]] = deque(maxlen=10_000)
        # A slow hypervisor, for demos and crash tests: FUYUN_FAKE_DELAY_S per operation.
        self.delay_s = (
            float(os.environ.get("FUYUN_FAKE_DELAY_S", "0")) if delay_s is None else delay_s
        )

    def _maybe_fail(self, op: str, vm_id: uuid.UUID) -> None:
        self.calls.append((op, vm_id))
        if self.delay_s:
            time.sleep(self.delay_s)
        if op in self.fail_on:
            raise DriverError(f"fake driver: {op} failed: {self.fail_on[op]}")

    def create(self, spec: InstanceSpec) -> None:
        with self._lock:
            self._maybe_fail("create", spec.vm_id)
            instances = self._hosts.setdefault(spec.host, {})
            current = instances.get(spec.vm_id)
            if current is not None and current.power is PowerState.RUNNING:
                return
            instances[spec.vm_id] = InstanceStatus(
                spec.vm_id, spec.host, PowerState.RUNNING, spec.vcpus, spec.ram_mb
            )

    def _set_power(self, op: str, host: str, vm_id: uuid.UUID, power: PowerState) -> None:
        with self._lock:
            self._maybe_fail(op, vm_id)
            instance = self._hosts.get(host, {}).get(vm_id)
            if instance is None:
                raise DriverError(f"fake driver: no instance {vm_id} on {host}")
            self._hosts[host][vm_id] = InstanceStatus(
                vm_id, host, power, instance.vcpus, instance.ram_mb
            )

    def start(self, host: str, vm_id: uuid.UUID) -> None:
        self._set_power("start", host, vm_id, PowerState.RUNNING)

    def stop(self, host: str, vm_id: uuid.UUID) -> None:
        self._set_power("stop", host, vm_id, PowerState.STOPPED)

    def reboot(self, host: str, vm_id: uuid.UUID) -> None:
        self._set_power("reboot", host, vm_id, PowerState.RUNNING)

    def resize(self, host: str, vm_id: uuid.UUID, vcpus: int, ram_mb: int) -> None:
        with self._lock:
            self._maybe_fail("resize", vm_id)
            instance = self._hosts.get(host, {}).get(vm_id)
            if instance is None:
                raise DriverError(f"fake driver: no instance {vm_id} on {host}")
            self._hosts[host][vm_id] = InstanceStatus(vm_id, host, instance.power, vcpus, ram_mb)

    def delete(self, host: str, vm_id: uuid.UUID) -> None:
        with self._lock:
            self._maybe_fail("delete", vm_id)
            self._hosts.get(host, {}).pop(vm_id, None)

    def migrate(
        self,
        vm_id: uuid.UUID,
        source_host: str,
        dest_host: str,
        *,
        max_downtime_ms: int = 300,
    ) -> MigrationStats:
        with self._lock:
            self._maybe_fail("migrate", vm_id)
            source = self._hosts.get(source_host, {})
            instance = source.get(vm_id)
            if instance is None:
                if vm_id in self._hosts.get(dest_host, {}):
                    return MigrationStats(0.0, 0.0, 0)  # already moved: a replay
                raise DriverError(f"fake driver: no instance {vm_id} on {source_host}")
            self._hosts.setdefault(dest_host, {})[vm_id] = InstanceStatus(
                vm_id, dest_host, instance.power, instance.vcpus, instance.ram_mb
            )
            del source[vm_id]
            return MigrationStats(total_ms=1.0, downtime_ms=0.0, transferred_bytes=0)

    def status(self, host: str, vm_id: uuid.UUID) -> InstanceStatus | None:
        with self._lock:
            return self._hosts.get(host, {}).get(vm_id)

    def list_instances(self, host: str) -> list[InstanceStatus]:
        with self._lock:
            return list(self._hosts.get(host, {}).values())
