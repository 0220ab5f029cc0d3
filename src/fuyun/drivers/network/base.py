"""The network driver contract: apply a device's rendered desired state, say what it runs.

``apply`` is idempotent (applying the same generation twice changes nothing) and
either converges the whole device or raises :class:`fuyun.domain.errors.DriverError`
leaving the previous state in force. ``observe`` reports the generation the device
actually enforces, so lag and drift are visible. A driver that can read a device back
in detail may also offer ``drift(state, rendered) -> tuple[str, ...]``: what on the
device differs from ``rendered`` (empty when it is fully in force). The host agent uses
it to find and repair changes made behind the control plane's back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class AppliedState:
    device_type: str
    device_name: str
    enforcement_point: str
    generation: int
    digest: str


@runtime_checkable
class NetworkDriver(Protocol):
    name: str

    def apply(self, state: AppliedState, rendered: str) -> None: ...

    def observe(
        self, device_type: str, device_name: str, enforcement_point: str
    ) -> AppliedState | None: ...
