"""``FUYUN_NETWORK_DRIVER=ovs`` builds the driver from the environment (here: the lab's)."""

from __future__ import annotations

import pytest

from fuyun.drivers.network import create_network_driver
from fuyun.drivers.network.ovs import OvsNetworkDriver
from tests.support.labworld import LabWorld


@pytest.mark.slow
def test_the_registry_builds_an_ovs_driver_that_sees_the_lab(
    lab: LabWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = lab.tenant("g-acme", "10.44.0.0/24")
    vm = lab.vm(t, "seen", lab.hosts[0])
    lab.converge()
    for key, value in lab.lab.env().items():
        monkeypatch.setenv(key, value)
    driver = create_network_driver("ovs")
    try:
        assert isinstance(driver, OvsNetworkDriver) and driver.name == "ovs"
        seen = driver.observe("host", vm.host, "ports")
        assert seen is not None and seen.generation >= 1
        assert driver.observe("host", "no-such-host", "ports") is None
        assert driver.observe("switch", vm.host, "ports") is None
    finally:
        driver.close()
