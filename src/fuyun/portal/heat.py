"""Heat-map arithmetic: ratios, colour buckets and the "near a limit" threshold. Pure.

Colour is never the only signal: every cell also carries its percentage in text
(visible on focus and to screen readers), and hot cells get a marker, so the map
reads the same in greyscale and for colour-blind operators.
"""

from __future__ import annotations

from dataclasses import dataclass

HOT = 0.8  # a switch table or host above this share is "near its limit"
BUCKETS = 10


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    about: str
    of_switch: bool  # read from the switch's own table, not from the hosts under it


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("cpu", "CPU", "vCPUs claimed of those allocatable (with overcommit)", False),
        Metric("ram", "RAM", "memory claimed of that allocatable", False),
        Metric("density", "VM density", "VMs of the hosts' 1pXv limits", False),
        Metric("mac", "MAC table", "switch MAC entries in use", True),
        Metric("arp", "ARP table", "switch ARP entries in use", True),
        Metric("vlan", "VLANs", "active VLANs of the switch's limit", True),
    )
}
DEFAULT_METRIC = "cpu"


def metric(key: str | None) -> Metric:
    return METRICS.get(key or DEFAULT_METRIC, METRICS[DEFAULT_METRIC])


def ratio(used: float, capacity: float) -> float:
    """Used over capacity, clamped to [0, 1]; nothing of nothing is 0, not an error."""
    if capacity <= 0:
        return 0.0
    return max(0.0, min(1.0, used / capacity))


def bucket(value: float) -> int:
    """0..10, the CSS class suffix of a cell's colour (``h0`` cool … ``h10`` full)."""
    return round(max(0.0, min(1.0, value)) * BUCKETS)


def hot(value: float) -> bool:
    return value >= HOT


def percent(value: float) -> str:
    return f"{value * 100:.0f} %"


@dataclass(frozen=True)
class Usage:
    """Totals of hosts (under a ToR, in a module) or one switch's tables."""

    vcpus_used: int = 0
    vcpus_cap: float = 0
    ram_used: int = 0
    ram_cap: float = 0
    vms: int = 0
    max_vms: int = 0
    mac: float = 0.0
    arp: float = 0.0
    vlan: float = 0.0

    def value(self, key: str) -> float:
        if key == "cpu":
            return ratio(self.vcpus_used, self.vcpus_cap)
        if key == "ram":
            return ratio(self.ram_used, self.ram_cap)
        if key == "density":
            return ratio(self.vms, self.max_vms)
        return float(getattr(self, key))

    @property
    def worst_table(self) -> float:
        return max(self.mac, self.arp, self.vlan)
