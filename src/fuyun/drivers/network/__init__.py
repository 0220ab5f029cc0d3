"""Network drivers: converge a device (vswitch, guest, ToR) to its desired policy."""

from fuyun.drivers.network.base import AppliedState, NetworkDriver
from fuyun.drivers.network.registry import create_network_driver

__all__ = ["AppliedState", "NetworkDriver", "create_network_driver"]
