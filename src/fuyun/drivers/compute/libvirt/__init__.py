"""The ``libvirt`` compute driver: domains through libvirt-python, peer-to-peer migration."""

from fuyun.drivers.compute.libvirt.config import LibvirtConfig, LibvirtHost
from fuyun.drivers.compute.libvirt.driver import LibvirtComputeDriver

__all__ = ["LibvirtComputeDriver", "LibvirtConfig", "LibvirtHost"]
