"""The VM lifecycle as an explicit state machine.

Every change of a VM's state goes through :func:`check_transition`, so an
illegal move (starting a deleted VM, migrating a stopped one) is refused with a
409 that names both states, instead of being silently accepted.
"""

from __future__ import annotations

from enum import StrEnum

from fuyun.domain.errors import Conflict


class VmState(StrEnum):
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    MIGRATING = "migrating"
    ERROR = "error"
    DELETED = "deleted"


_ALLOWED: dict[VmState, frozenset[VmState]] = {
    VmState.BUILDING: frozenset({VmState.ACTIVE, VmState.ERROR, VmState.DELETED}),
    VmState.ACTIVE: frozenset({VmState.STOPPED, VmState.MIGRATING, VmState.ERROR, VmState.DELETED}),
    VmState.STOPPED: frozenset({VmState.ACTIVE, VmState.MIGRATING, VmState.ERROR, VmState.DELETED}),
    VmState.MIGRATING: frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.ERROR}),
    VmState.ERROR: frozenset({VmState.ACTIVE, VmState.STOPPED, VmState.DELETED}),
    VmState.DELETED: frozenset(),
}


def can_transition(current: VmState, target: VmState) -> bool:
    return target in _ALLOWED[current]


def check_transition(current: VmState, target: VmState) -> None:
    """Raise :class:`Conflict` unless ``current -> target`` is a legal move."""
    if not can_transition(current, target):
        raise Conflict(
            f"a VM in state '{current}' cannot become '{target}'",
            field="state",
            code="invalid_state",
        )
