"""VLAN id choice inside a pool: the lowest id not reserved and not taken."""

from __future__ import annotations

from collections.abc import Iterable

MIN_VLAN, MAX_VLAN = 1, 4094


def next_free_vlan(
    first: int, last: int, reserved: Iterable[int], taken: Iterable[int]
) -> int | None:
    """O(pool size) at worst, and a pool holds at most 4094 ids."""
    blocked = set(reserved) | set(taken)
    for vlan in range(max(first, MIN_VLAN), min(last, MAX_VLAN) + 1):
        if vlan not in blocked:
            return vlan
    return None
