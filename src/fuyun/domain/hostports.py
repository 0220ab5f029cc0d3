"""The port map a host enforces: the contract between the control plane and host drivers.

One document per hypervisor host, stored as the desired state of the device
``("host", NAME, "ports")``: every VM port bound to the host with the tag of its
network segment on that host's ToR, its MAC and the addresses IPAM gave it. A
network driver plugs, tags and anti-spoofs ports from it; telemetry attributes
traffic with it; a migration rewrites it on both hosts.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

ENFORCEMENT_POINT = "ports"


@dataclass(frozen=True)
class PortBinding:
    port_id: str
    vm_id: str
    vm: str
    tenant: str
    network: str
    vlan: int
    mac: str
    ips: tuple[str, ...]


@dataclass(frozen=True)
class HostPorts:
    host: str
    ports: tuple[PortBinding, ...] = ()

    def to_json(self) -> str:
        # The fields as they are (tuples print as lists): ``asdict`` deep-copies every
        # binding first, which costs more than the encoding on a busy host.
        doc = {"host": self.host, "ports": [vars(p) for p in self.ports]}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> HostPorts:
        raw = json.loads(text)
        return cls(
            host=raw["host"],
            ports=tuple(PortBinding(**{**p, "ips": tuple(p["ips"])}) for p in raw.get("ports", ())),
        )


def hypervisor_ifname(host: str, port_id: str | uuid.UUID) -> str:
    """The interface a hypervisor makes for a port on a host (a QEMU tap).

    At most 15 characters, as Linux requires, and distinct per host: during a live
    migration the VM has a tap on the source and one on the destination, and in the
    lab every host's switch (so every tap) lives in one namespace. The host's network
    driver names the switch port the same way, so it can program the port — tag,
    anti-spoofing and policy flows — before the hypervisor creates the interface.
    """
    digest = hashlib.sha1(f"{host}/{port_id}".encode()).hexdigest()
    return f"fv{digest[:12]}"
