"""The ``sim`` network driver: a simulated fabric that enforces what it is given.

It keeps the last applied state per device in memory, so the whole reconcile loop
(desired → apply → observed generation) runs on a laptop exactly as it would
against Open vSwitch or a ToR, and can be told to fail for tests.
"""

from __future__ import annotations

import threading

from fuyun.domain.errors import DriverError
from fuyun.drivers.network.base import AppliedState


class SimNetworkDriver:
    name = "sim"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[tuple[str, str, str], tuple[AppliedState, str]] = {}
        self.fail_on: set[str] = set()  # device names whose apply fails
        self.applies = 0

    def apply(self, state: AppliedState, rendered: str) -> None:
        if state.device_name in self.fail_on:
            raise DriverError(f"sim: {state.device_name} refused the configuration")
        with self._lock:
            key = (state.device_type, state.device_name, state.enforcement_point)
            current = self._devices.get(key)
            # The same text again is no apply; a new generation of it is recorded.
            # (Not the digest alone: a policy's digest stays when the members of an
            # address set it refers to change, its text does not.)
            same = current is not None and current[1] == rendered
            self._devices[key] = (state, rendered)
            if not same:
                self.applies += 1

    def observe(
        self, device_type: str, device_name: str, enforcement_point: str
    ) -> AppliedState | None:
        with self._lock:
            entry = self._devices.get((device_type, device_name, enforcement_point))
            return entry[0] if entry else None

    def config(self, device_type: str, device_name: str, enforcement_point: str) -> str | None:
        with self._lock:
            entry = self._devices.get((device_type, device_name, enforcement_point))
            return entry[1] if entry else None
