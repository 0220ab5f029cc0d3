"""Domain XML: taps carry the names the host's network driver programs, on each host."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

from fuyun.domain.hostports import hypervisor_ifname
from fuyun.drivers.compute import InstanceSpec, NicSpec
from fuyun.drivers.compute.libvirt.config import LibvirtConfig
from fuyun.drivers.compute.libvirt.domxml import domain_xml, for_destination, spec_of

PORTS = (uuid.uuid4(), uuid.uuid4())
SPEC = InstanceSpec(
    uuid.uuid4(), "web", "host-a", 2, 512, 10, "tiny",
    (NicSpec(PORTS[0], "52:54:00:00:00:01", 100, "front"),
     NicSpec(PORTS[1], "52:54:00:00:00:02", 200, "back")),
)  # fmt: skip


def _targets(xml: str) -> dict[str, str]:
    dom = ET.fromstring(xml)
    return {
        i.find("mac").get("address"): i.find("target").get("dev")  # type: ignore[union-attr]
        for i in dom.iterfind("./devices/interface")
    }


def test_each_tap_is_named_for_its_host_and_port() -> None:
    xml = domain_xml(LibvirtConfig(hosts={}, domain_type="qemu"), SPEC, "ovs:br-int")
    assert _targets(xml) == {
        "52:54:00:00:00:01": hypervisor_ifname("host-a", PORTS[0]),
        "52:54:00:00:00:02": hypervisor_ifname("host-a", PORTS[1]),
    }
    assert spec_of(xml) == SPEC


def test_the_destination_xml_renames_only_the_taps() -> None:
    source = domain_xml(LibvirtConfig(hosts={}, domain_type="qemu"), SPEC, "none")
    # What libvirt adds to a running domain's migratable XML must survive untouched.
    running = source.replace(
        '<model type="virtio" />',
        '<model type="virtio" /><address type="pci" domain="0x0000" bus="0x00" '
        'slot="0x03" function="0x0" />',
        1,
    )
    dest = for_destination(running, SPEC, "host-b")
    assert _targets(dest) == {
        "52:54:00:00:00:01": hypervisor_ifname("host-b", PORTS[0]),
        "52:54:00:00:00:02": hypervisor_ifname("host-b", PORTS[1]),
    }
    assert set(_targets(dest).values()).isdisjoint(_targets(running).values())
    strip = [(e.tag, dict(e.attrib)) for e in ET.fromstring(dest).iter() if e.tag != "target"]
    assert strip == [
        (e.tag, dict(e.attrib)) for e in ET.fromstring(running).iter() if e.tag != "target"
    ]
    assert 'slot="0x03"' in dest and spec_of(dest) == SPEC
