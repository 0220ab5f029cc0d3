"""Compute drivers: a small protocol, the ``fake`` driver, and a registry."""

from fuyun.drivers.compute.base import (
    ComputeDriver,
    InstanceSpec,
    InstanceStatus,
    MigrationStats,
    NicSpec,
)
from fuyun.drivers.compute.registry import available, create_driver

__all__ = [
    "ComputeDriver",
    "InstanceSpec",
    "InstanceStatus",
    "MigrationStats",
    "NicSpec",
    "available",
    "create_driver",
]
