"""Devices converge on level: a lagging device is applied, a failing one retried."""

from __future__ import annotations

from sqlalchemy import select

from fuyun.drivers.network.sim import SimNetworkDriver
from fuyun.services.reconcile import reconcile_once
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState


def _device(db: Database, name: str, desired: int, applied: int) -> None:
    with db.write_session() as s:
        s.add(
            DeviceState(
                device_type="host",
                device_name=name,
                enforcement_point="vswitch",
                flavor="ovs",
                ir={},
                rendered=f"config of {name}",
                digest=name,
                desired_generation=desired,
                applied_generation=applied,
            )
        )


def test_lagging_devices_are_applied_and_failures_retried(db: Database) -> None:
    _device(db, "h1", 3, 1)
    _device(db, "h2", 2, 2)
    _device(db, "h3", 1, 0)
    driver = SimNetworkDriver()
    driver.fail_on.add("h3")
    first = reconcile_once(db, driver)
    assert (first.applied, first.failed) == (1, 1)
    assert driver.observe("host", "h1", "vswitch").generation == 3  # type: ignore[union-attr]
    assert driver.config("host", "h1", "vswitch") == "config of h1"
    driver.fail_on.clear()
    assert reconcile_once(db, driver).applied == 1
    with db.read_session() as s:
        lag = s.scalars(
            select(DeviceState.device_name).where(
                DeviceState.applied_generation < DeviceState.desired_generation
            )
        ).all()
    assert lag == []
    applies = driver.applies
    assert reconcile_once(db, driver).applied == 0
    assert driver.applies == applies, "an unchanged state is not applied again"
