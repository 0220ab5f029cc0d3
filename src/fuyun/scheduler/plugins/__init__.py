"""Filters and weighers, one per module, and the default pipeline."""

from __future__ import annotations

from fuyun.scheduler.framework import Filter, Weigher
from fuyun.scheduler.plugins.affinity import AffinityFilter
from fuyun.scheduler.plugins.bandwidth import BandwidthFilter
from fuyun.scheduler.plugins.density import DensityFilter
from fuyun.scheduler.plugins.disk import DiskFilter
from fuyun.scheduler.plugins.host_state import HostStateFilter
from fuyun.scheduler.plugins.hypervisor import HypervisorFilter
from fuyun.scheduler.plugins.locality import LocalityWeigher
from fuyun.scheduler.plugins.module_balance import ModuleBalanceWeigher
from fuyun.scheduler.plugins.pack_spread import PackSpreadWeigher
from fuyun.scheduler.plugins.ram import RamFilter
from fuyun.scheduler.plugins.reachability import ReachabilityFilter
from fuyun.scheduler.plugins.switch_capacity import SwitchCapacityFilter
from fuyun.scheduler.plugins.vcpu import VcpuFilter


def default_filters() -> list[Filter]:
    """Cheapest and most selective first: most hosts fall at the first check."""
    return [
        HostStateFilter(),
        HypervisorFilter(),
        DensityFilter(),
        VcpuFilter(),
        RamFilter(),
        DiskFilter(),
        BandwidthFilter(),
        ReachabilityFilter(),
        SwitchCapacityFilter(),
        AffinityFilter(),
    ]


def default_weighers(
    *, pack: float = 1.0, locality: float = 2.0, balance: float = 0.5
) -> list[Weigher]:
    return [PackSpreadWeigher(pack), LocalityWeigher(locality), ModuleBalanceWeigher(balance)]


__all__ = ["default_filters", "default_weighers"]
