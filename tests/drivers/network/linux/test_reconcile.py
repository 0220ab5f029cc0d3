"""The reconciler converges a Linux-bridge host through the ``linux`` driver, on level."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fuyun.drivers.network.linux import LinuxNetworkDriver
from fuyun.services.reconcile import reconcile_once
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState
from tests.drivers.network.linux import tenants
from tests.drivers.network.linux.lab import linux_lab, sh
from tests.drivers.network.linux.tenants import VMS, Tenants


def _store(db: Database, point: str, generation: int, digest: str, text: str) -> None:
    with db.write_session() as s:
        row = s.scalars(
            select(DeviceState).where(
                DeviceState.device_name == tenants.HOST, DeviceState.enforcement_point == point
            )
        ).first()
        if row is None:
            row = DeviceState(
                device_type="host",
                device_name=tenants.HOST,
                enforcement_point=point,
                flavor="linux-bridge",
                ir={},
                applied_generation=0,
            )
            s.add(row)
        row.desired_generation, row.digest, row.rendered = generation, digest, text


@pytest.mark.slow
def test_lagging_host_parts_are_applied_and_a_broken_one_retried(db: Database) -> None:
    with linux_lab() as lab:
        driver = LinuxNetworkDriver(tenants.HOST, lab.host)
        world = Tenants()
        ports_state, ports_text = tenants.ports()
        vswitch_state, vswitch_text = world.vswitch()
        _store(db, "ports", ports_state.generation, ports_state.digest, ports_text)
        _store(db, "vswitch", vswitch_state.generation, vswitch_state.digest, vswitch_text)

        first = reconcile_once(db, driver)
        assert (first.applied, first.failed) == (1, 1), "VMs not started: ports refused"
        assert driver.observe("host", tenants.HOST, "vswitch") == vswitch_state

        for v in VMS:  # the VMs start: their interfaces appear
            lab.port(str(v.port_id))
        assert reconcile_once(db, driver).applied == 1
        assert driver.observe("host", tenants.HOST, "ports") == ports_state
        listing = sh("nft", "-a", "list", "ruleset", ns=lab.host)
        assert reconcile_once(db, driver).applied == 0, "nothing lags any more"
        assert sh("nft", "-a", "list", "ruleset", ns=lab.host) == listing
