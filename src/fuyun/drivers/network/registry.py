"""Network drivers by name (``FUYUN_NETWORK_DRIVER``); real ones register themselves."""

from __future__ import annotations

from collections.abc import Callable

from fuyun.domain.errors import InvalidInput
from fuyun.drivers.network.base import NetworkDriver
from fuyun.drivers.network.sim import SimNetworkDriver


def _linux() -> NetworkDriver:
    """Imported on demand: pyroute2 and the host's tools are needed only where it runs."""
    from fuyun.drivers.network.linux import LinuxNetworkDriver

    return LinuxNetworkDriver.from_env()


def _ovs() -> NetworkDriver:
    """Imported on demand: the OVS libraries are needed only where OVS runs."""
    from fuyun.drivers.network.ovs import OvsNetworkDriver

    return OvsNetworkDriver.from_env()


_FACTORIES: dict[str, Callable[[], NetworkDriver]] = {
    "sim": SimNetworkDriver,
    "linux": _linux,
    "ovs": _ovs,
}


def register(name: str, factory: Callable[[], NetworkDriver]) -> None:
    _FACTORIES[name] = factory


def create_network_driver(name: str) -> NetworkDriver:
    try:
        return _FACTORIES[name]()
    except KeyError:
        known = ", ".join(sorted(_FACTORIES))
        raise InvalidInput(
            f"unknown network driver '{name}'; known: {known}", field="network_driver"
        ) from None
