"""The arithmetic of guaranteed bandwidth, shared by admission control and the scheduler.

Two numbers decide whether a guarantee fits: what a link can carry and what is
already promised on it. Both live in the store (``hosts.nic_mbps`` /
``hosts.used_bandwidth_mbps`` for a host uplink, ``switches.uplink_mbps`` /
``switches.used_bandwidth_mbps`` for a ToR uplink); admission moves the promised
number with a conditional ``UPDATE`` and the scheduler's filter reads the same
columns through :func:`left`, so "bandwidth left" has one definition.

A tenant on a host needs :func:`tenant_need`: the sum of its ports' guarantees,
raised to its aggregate guarantee when it has one — the tenant's class on that
host is owed at least the aggregate, and never less than its children.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def left(capacity_mbps: int, used_mbps: int) -> int:
    """Guaranteed Mbit/s still free on a link (never negative)."""
    return max(0, capacity_mbps - used_mbps)


def tenant_need(port_guarantees: Iterable[int], aggregate_mbps: int, *, has_ports: bool) -> int:
    """Mbit/s a tenant must have admitted on one host for the ports bound there."""
    if not has_ports:
        return 0
    return max(sum(port_guarantees), aggregate_mbps)


@dataclass(frozen=True)
class Link:
    """A link that guarantees are admitted on, as the refusal names it."""

    kind: str  # "host uplink" | "ToR uplink"
    name: str
    capacity_mbps: int
    used_mbps: int

    def refusal(self, wanted_mbps: int) -> str:
        return (
            f"{self.kind} of {self.name} cannot guarantee {wanted_mbps} Mbit/s more: "
            f"{self.used_mbps} of {self.capacity_mbps} Mbit/s already guaranteed, "
            f"{left(self.capacity_mbps, self.used_mbps)} left"
        )
