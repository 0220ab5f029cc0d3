"""Compute drivers by name, chosen by configuration (``FUYUN_COMPUTE_DRIVER``)."""

from __future__ import annotations

from collections.abc import Callable

from fuyun.domain.errors import InvalidInput
from fuyun.drivers.compute.base import ComputeDriver
from fuyun.drivers.compute.fake import FakeComputeDriver


def _qemu() -> ComputeDriver:
    # Imported on demand: qemu.qmp is an optional dependency (extra ``hypervisors``).
    from fuyun.drivers.compute.qemu import QemuComputeDriver

    return QemuComputeDriver()


def _libvirt() -> ComputeDriver:
    from fuyun.drivers.compute.libvirt import LibvirtComputeDriver

    return LibvirtComputeDriver()


_FACTORIES: dict[str, Callable[[], ComputeDriver]] = {
    "fake": FakeComputeDriver,
    "qemu": _qemu,
    "libvirt": _libvirt,
}


def register(name: str, factory: Callable[[], ComputeDriver]) -> None:
    _FACTORIES[name] = factory


def available() -> list[str]:
    return sorted(_FACTORIES)


def create_driver(name: str) -> ComputeDriver:
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise InvalidInput(
            f"unknown compute driver '{name}'; known: {', '.join(available())}",
            field="compute_driver",
        ) from None
