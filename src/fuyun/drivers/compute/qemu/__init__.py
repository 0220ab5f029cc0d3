"""The ``qemu`` compute driver: QEMU processes over QMP, with live migration."""

from fuyun.drivers.compute.qemu.config import HostConfig, QemuConfig
from fuyun.drivers.compute.qemu.driver import QemuComputeDriver

__all__ = ["HostConfig", "QemuComputeDriver", "QemuConfig"]
