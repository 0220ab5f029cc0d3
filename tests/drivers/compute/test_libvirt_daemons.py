"""The ``libvirt`` driver against two real, hand-started ``libvirtd`` daemons.

The conformance suite runs with migration declared possible; the guest test boots
the tiny Debian guest under QEMU (TCG) and live-migrates it between the daemons
with ``migrateToURI3`` (peer-to-peer, live, persistent, undefine-source).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from fuyun.drivers.compute import InstanceSpec, NicSpec
from fuyun.drivers.compute.base import ComputeDriver, PowerState
from tests.drivers.compute.conformance import ComputeDriverConformance, Harness
from tests.support.capabilities import missing
from tests.support.guest import Guest
from tests.support.libvirt_daemons import Daemon, can_run_libvirtd, two_daemons

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemons() -> Iterator[tuple[Daemon, Daemon]]:
    why = can_run_libvirtd()
    if why:
        missing("libvirtd", why)
    try:
        with two_daemons() as (a, b, _netns):
            yield a, b
    except RuntimeError as exc:
        missing("libvirtd", str(exc))


def make_driver(daemons: tuple[Daemon, Daemon], guest: Guest | None = None) -> ComputeDriver:
    from fuyun.drivers.compute.libvirt import LibvirtComputeDriver, LibvirtConfig, LibvirtHost

    a, b = daemons
    return LibvirtComputeDriver(
        LibvirtConfig(
            hosts={d.name: LibvirtHost(d.uri, d.peer_uri, "tcp://127.0.0.1") for d in (a, b)},
            domain_type="qemu",
            kernel=guest.kernel if guest else None,
            initrd=guest.initrd if guest else None,
            append=guest.append if guest else "",
        )
    )


@pytest.fixture
def harness(daemons: tuple[Daemon, Daemon]) -> Iterator[Harness]:
    driver = make_driver(daemons)
    h = Harness(driver, (daemons[0].name, daemons[1].name))
    yield h
    h.cleanup()
    driver.close()  # type: ignore[attr-defined]


class TestLibvirtDaemonsConformance(ComputeDriverConformance):
    pass


def test_a_booted_guest_live_migrates_between_daemons(
    daemons: tuple[Daemon, Daemon], guest: Guest
) -> None:
    driver = make_driver(daemons, guest)
    a, b = daemons
    vm_id = uuid.uuid4()
    spec = InstanceSpec(
        vm_id, "lv-guest", a.name, 1, 128, 1, "tiny",
        (NicSpec(uuid.uuid4(), "52:54:00:1b:00:01", 100, "lab"),),
    )  # fmt: skip
    try:
        driver.create(spec)
        stats = driver.migrate(vm_id, a.name, b.name, max_downtime_ms=300)
        print("libvirt live migration:", stats)
        assert stats.total_ms > 0 and stats.transferred_bytes > 0
        moved = driver.status(b.name, vm_id)
        assert moved is not None and moved.power is PowerState.RUNNING
        assert driver.status(a.name, vm_id) is None
        # Persistent on the destination, undefined on the source: it survives a stop.
        driver.stop(b.name, vm_id)
        driver.start(b.name, vm_id)
    except Exception:
        print(a.log(), b.log())
        raise
    finally:
        for d in daemons:
            driver.delete(d.name, vm_id)
        driver.close()  # type: ignore[attr-defined]
