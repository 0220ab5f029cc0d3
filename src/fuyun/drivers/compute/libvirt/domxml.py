"""Domain XML from an instance spec (flavor sizes and ports), and the spec back from it.

The spec rides along in the domain's ``<metadata>``, so resize and migration
rebuild the XML from what fuyun asked for rather than parsing libvirt's
expansion of it. Interfaces follow the host's plug: ``none`` lets libvirt make a
plain tap (``type='ethernet'``), ``bridge:NAME`` a Linux bridge port, and
``ovs:NAME`` an Open vSwitch port tagged with the segment's VLAN.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import hypervisor_ifname
from fuyun.drivers.compute.base import InstanceSpec
from fuyun.drivers.compute.libvirt.config import LibvirtConfig
from fuyun.drivers.compute.specjson import spec_from_json, spec_to_json

NS = "https://fuyun.invalid/xmlns/instance/1"


def domain_name(spec: InstanceSpec) -> str:
    return f"fuyun-{spec.vm_id}"


def _interface(devices: ET.Element, plug: str, mac: str, vlan: int, dev: str) -> None:
    kind, _, bridge = plug.partition(":")
    iface = ET.SubElement(devices, "interface", type="ethernet" if kind == "none" else "bridge")
    ET.SubElement(iface, "mac", address=mac)
    # The tap is named as the host's network driver expects it (not libvirt's vnetN),
    # so the switch port is programmed before, and found after, the guest starts.
    ET.SubElement(iface, "target", dev=dev)
    if kind != "none":
        ET.SubElement(iface, "source", bridge=bridge)
    if kind == "ovs":
        ET.SubElement(iface, "virtualport", type="openvswitch")
        ET.SubElement(ET.SubElement(iface, "vlan"), "tag", id=str(vlan))
    ET.SubElement(iface, "model", type="virtio")


def domain_xml(cfg: LibvirtConfig, spec: InstanceSpec, plug: str) -> str:
    dom = ET.Element("domain", type=cfg.domain_type)
    ET.SubElement(dom, "name").text = domain_name(spec)
    ET.SubElement(dom, "uuid").text = str(spec.vm_id)
    ET.SubElement(dom, "title").text = spec.name
    meta = ET.SubElement(dom, "metadata")
    ET.SubElement(meta, f"{{{NS}}}spec").text = spec_to_json(spec)
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.ram_mb)
    ET.SubElement(dom, "vcpu").text = str(spec.vcpus)
    os_ = ET.SubElement(dom, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    if cfg.kernel is not None and cfg.domain_type != "test":
        ET.SubElement(os_, "kernel").text = str(cfg.kernel)
        if cfg.initrd is not None:
            ET.SubElement(os_, "initrd").text = str(cfg.initrd)
        ET.SubElement(os_, "cmdline").text = cfg.append
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart")):
        ET.SubElement(dom, event).text = action
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    if cfg.domain_type != "test":
        ET.SubElement(devices, "emulator").text = cfg.emulator
        ET.SubElement(devices, "serial", type="pty")
    for nic in spec.nics:
        _interface(devices, plug, nic.mac, nic.vlan, hypervisor_ifname(spec.host, nic.port_id))
    ET.register_namespace("fuyun", NS)
    return ET.tostring(dom, encoding="unicode")


def for_destination(migratable_xml: str, spec: InstanceSpec, dest_host: str) -> str:
    """The running domain's migratable XML with each tap renamed for ``dest_host``.

    Source and destination taps exist together during a live migration (and share
    one namespace in the lab), so the destination's carry that host's names. Only
    the names change: the rest of the XML is the source's, as ABI stability wants.
    """
    dev_of = {nic.mac.lower(): hypervisor_ifname(dest_host, nic.port_id) for nic in spec.nics}
    dom = ET.fromstring(migratable_xml)
    for iface in dom.iterfind("./devices/interface"):
        mac = iface.find("mac")
        dev = dev_of.get((mac.get("address") or "").lower()) if mac is not None else None
        if dev is None:
            continue
        target = iface.find("target")
        if target is None:
            target = ET.SubElement(iface, "target")
        target.set("dev", dev)
    ET.register_namespace("fuyun", NS)
    return ET.tostring(dom, encoding="unicode")


def spec_of(xml: str) -> InstanceSpec | None:
    """The spec fuyun defined a domain with; None for a domain fuyun did not define."""
    try:
        node = ET.fromstring(xml).find(f"metadata/{{{NS}}}spec")
    except ET.ParseError as exc:
        raise DriverError(f"libvirt returned unreadable domain XML: {exc}") from exc
    return spec_from_json(node.text) if node is not None and node.text else None
