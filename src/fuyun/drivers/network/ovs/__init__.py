"""The Open vSwitch network driver (``FUYUN_NETWORK_DRIVER=ovs``) and its private daemons."""

from fuyun.drivers.network.ovs.daemon import OvsDaemons
from fuyun.drivers.network.ovs.driver import OvsNetworkDriver
from fuyun.drivers.network.ovs.plug import NamespacePlugger

__all__ = ["NamespacePlugger", "OvsDaemons", "OvsNetworkDriver"]
