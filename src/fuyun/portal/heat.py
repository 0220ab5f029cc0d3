"""Heat-map presentation: metrics, colour buckets and the "near a limit" threshold. Pure.

The numbers (:class:`Usage`, :func:`ratio`) are the fabric read model's
(:mod:`fuyun.services.views.fabric`); this module only decides how they look.

Colour is never the only signal: every cell also carries its percentage in text
(visible on focus and to screen readers), and hot cells get a marker, so the map
reads the same in greyscale and for colour-blind operators.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuyun.services.views.fabric import Usage, ratio

__all__ = ["HOT", "METRICS", "Metric", "Usage", "bucket", "hot", "metric", "percent", "ratio"]

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


def bucket(value: float) -> int:
    """0..10, the CSS class suffix of a cell's colour (``h0`` cool … ``h10`` full)."""
    return round(max(0.0, min(1.0, value)) * BUCKETS)


def hot(value: float) -> bool:
    return value >= HOT


def percent(value: float) -> str:
    return f"{value * 100:.0f} %"
