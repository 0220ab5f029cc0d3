"""Each host's ToR interface: from the fabric file, or derived from its index under its ToR."""

from __future__ import annotations

from fuyun.fabric.check import check_fabric
from fuyun.fabric.spec import FabricSpec
from fuyun.fabric.torports import fill_tor_ports, tor_port_name
from fuyun.store.engine import Database
from tests.fabric.conftest import build_tiny
from tests.fabric.test_loader import export, load


def test_derived_from_the_index_under_each_tor_in_file_order() -> None:
    spec = fill_tor_ports(build_tiny())
    ports = {h.name: h.tor_port for h in spec.hosts}
    # a-h1, a-h2 share a-t1; a-h3 and b-h1 are first under theirs.
    assert ports == {
        "a-h1": "Ethernet1/1",
        "a-h2": "Ethernet1/2",
        "a-h3": "Ethernet1/1",
        "b-h1": "Ethernet1/1",
    }
    assert tor_port_name("comware", 3) == "Ten-GigabitEthernet1/0/3"


def test_a_given_interface_is_kept_and_not_derived_twice() -> None:
    tiny = build_tiny()
    hosts = list(tiny.hosts)
    i = next(i for i, h in enumerate(hosts) if h.name == "a-h2")
    hosts[i] = hosts[i].model_copy(update={"tor_port": "Ethernet1/1"})
    spec = fill_tor_ports(tiny.model_copy(update={"hosts": hosts}))
    ports = {h.name: h.tor_port for h in spec.hosts}
    assert ports["a-h2"] == "Ethernet1/1"
    assert ports["a-h1"] == "Ethernet1/2", "the next free interface, not a clash"


def test_two_hosts_on_one_interface_is_an_error_naming_the_field() -> None:
    tiny = build_tiny()
    hosts = [
        h.model_copy(update={"tor_port": "Ethernet1/9"}) if h.tor == "a-t1" else h
        for h in tiny.hosts
    ]
    findings = check_fabric(tiny.model_copy(update={"hosts": hosts}))
    clash = [f for f in findings if f.field == "tor_port"]
    assert len(clash) == 1 and "Ethernet1/9" in clash[0].message


def test_the_store_keeps_the_resolved_interface_and_exports_it(db: Database) -> None:
    tiny: FabricSpec = build_tiny()
    load(db, tiny)
    exported = {h.name: h.tor_port for h in export(db).hosts}
    assert exported == {h.name: h.tor_port for h in fill_tor_ports(tiny).hosts}
    assert None not in exported.values()
