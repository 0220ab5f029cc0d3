"""The ``libvirt`` driver against libvirt's own ``test`` hypervisor.

Host A is the process-wide ``test:///default`` (which also holds libvirt's
stock ``test`` domain: an instance fuyun did not make); host B is a private
``test:///FILE`` node. The test driver has no migration, declared as such: the
suite checks that migrate refuses with libvirt's reason and leaves the domain
running where it was. Real daemons and a real migration: test_libvirt_daemons.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fuyun.drivers.compute.base import ComputeDriver
from tests.drivers.compute.conformance import ComputeDriverConformance, Harness
from tests.support.capabilities import missing

NODE = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>
  <active>4</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>8388608</memory>
</node>
"""


def make_driver(tmp_path: Path) -> ComputeDriver:
    try:
        from fuyun.drivers.compute.libvirt import (
            LibvirtComputeDriver,
            LibvirtConfig,
            LibvirtHost,
        )
    except ImportError as exc:
        missing("libvirt-python", str(exc))
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    return LibvirtComputeDriver(
        LibvirtConfig(
            hosts={
                "lv-a": LibvirtHost(uri="test:///default"),
                "lv-b": LibvirtHost(uri=f"test://{node}"),
            },
            domain_type="test",
        )
    )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    driver = make_driver(tmp_path)
    h = Harness(driver, ("lv-a", "lv-b"), migration=False, no_migration_reason="not supported")
    yield h
    h.cleanup()
    driver.close()  # type: ignore[attr-defined]


class TestLibvirtTestDriverConformance(ComputeDriverConformance):
    pass


def test_an_instance_fuyun_did_not_define_is_listed(tmp_path: Path) -> None:
    driver = make_driver(tmp_path)
    listed = {str(i.vm_id) for i in driver.list_instances("lv-a")}
    assert "6695eb01-f6a4-8304-79aa-97f2502e193f" in listed  # libvirt's stock "test" domain
    driver.close()  # type: ignore[attr-defined]
