"""The real drivers' settings and generated domain XML, checked without a hypervisor."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fuyun.domain.errors import InvalidInput
from fuyun.drivers.compute import InstanceSpec, NicSpec
from fuyun.drivers.compute.qemu.config import HostConfig, QemuConfig
from fuyun.drivers.compute.qemu.plug import LinuxBridgePlug, NoPlug, OvsPlug, make_plug
from fuyun.drivers.compute.specjson import spec_from_json, spec_to_json
from tests.support.capabilities import missing


def _spec() -> InstanceSpec:
    return InstanceSpec(
        uuid.uuid4(), "web-1", "h1", 2, 512, 10, "debian-12",
        (NicSpec(uuid.uuid4(), "fa:16:3e:00:00:01", 101, "web"),
         NicSpec(uuid.uuid4(), "fa:16:3e:00:00:02", 102, "db")),
    )  # fmt: skip


def test_qemu_settings_from_the_environment() -> None:
    cfg = QemuConfig.from_env(
        {
            "FUYUN_QEMU_STATE_DIR": "/srv/state",
            "FUYUN_QEMU_ACCEL": "tcg",
            "FUYUN_QEMU_KERNEL": "/srv/vmlinuz",
            "FUYUN_QEMU_HOSTS": '{"*": {"plug": "bridge:br0"}, "h2": {"netns": "n2",'
            ' "plug": "ovs:br-int", "ovsdb": "unix:/x.sock"}}',
        }
    )
    assert (cfg.state_dir, cfg.accel, cfg.kernel) == (
        Path("/srv/state"),
        "tcg",
        Path("/srv/vmlinuz"),
    )
    assert cfg.host("h1") == HostConfig(None, "bridge:br0")
    assert cfg.host("h2") == HostConfig("n2", "ovs:br-int", "unix:/x.sock")
    assert QemuConfig.from_env({}).host("any") == HostConfig()


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"FUYUN_QEMU_ACCEL": "hvf"}, "FUYUN_QEMU_ACCEL"),
        ({"FUYUN_QEMU_MIGRATION_TIMEOUT_S": "soon"}, "FUYUN_QEMU_MIGRATION_TIMEOUT_S"),
        ({"FUYUN_QEMU_HOSTS": "{not json"}, "FUYUN_QEMU_HOSTS"),
        ({"FUYUN_QEMU_HOSTS": '["h1"]'}, "FUYUN_QEMU_HOSTS"),
        ({"FUYUN_QEMU_HOSTS": '{"h1": {"bridge": "br0"}}'}, "FUYUN_QEMU_HOSTS"),
    ],
)
def test_bad_qemu_settings_name_the_setting(env: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        QemuConfig.from_env(env)
    assert bad.value.field == field


def test_plugs_by_spec() -> None:
    assert make_plug("none", None) == NoPlug()
    assert make_plug("bridge:br0", "ns1") == LinuxBridgePlug("br0", "ns1")
    assert make_plug("ovs:br-int", None, "unix:/db") == OvsPlug("br-int", "unix:/db", None)
    for bad in ("bridge", "ovs:", "vde:sw0", "none:x"):
        with pytest.raises(InvalidInput):
            make_plug(bad, None)


def test_spec_json_round_trip() -> None:
    spec = _spec()
    assert spec_from_json(spec_to_json(spec)) == spec


def test_libvirt_domain_xml_follows_the_spec_and_the_plug() -> None:
    try:
        from fuyun.drivers.compute.libvirt.config import LibvirtConfig, LibvirtHost
        from fuyun.drivers.compute.libvirt.domxml import domain_xml, spec_of
    except ImportError as exc:
        missing("libvirt-python", str(exc))

    spec = _spec()
    cfg = LibvirtConfig(kernel=Path("/k"), domain_type="qemu")
    root = ET.fromstring(domain_xml(cfg, spec, "ovs:br-int"))
    assert root.get("type") == "qemu" and root.findtext("uuid") == str(spec.vm_id)
    assert root.findtext("memory") == "512" and root.findtext("vcpu") == "2"
    ifaces = root.findall("devices/interface")
    assert [i.find("mac").get("address") for i in ifaces] == [n.mac for n in spec.nics]  # type: ignore[union-attr]
    assert [i.find("vlan/tag").get("id") for i in ifaces] == ["101", "102"]  # type: ignore[union-attr]
    assert ifaces[0].find("virtualport").get("type") == "openvswitch"  # type: ignore[union-attr]
    plain = ET.fromstring(domain_xml(cfg, spec, "none")).findall("devices/interface")
    assert {i.get("type") for i in plain} == {"ethernet"}
    assert spec_of(domain_xml(cfg, spec, "bridge:br0")) == spec
    assert spec_of("<domain type='test'><name>by-hand</name></domain>") is None
    fleet = LibvirtConfig(hosts={"*": LibvirtHost(uri="qemu+tcp://{host}/system")})
    assert fleet.host("h7").uri == "qemu+tcp://h7/system"
