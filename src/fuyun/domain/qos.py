"""The QoS document a host enforces: the contract between the QoS compiler and the drivers.

The control plane stores one such document per host as the desired state of the
device ``("host", NAME, "qos")``; a network driver turns it into Open vSwitch
``linux-htb`` queues or Linux ``tc`` HTB classes. Rates are bits per second and
bursts bytes, so no driver has to guess units. A rate of 0 means "none": no
guarantee for ``min_bps``, line rate for ``max_bps``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

ENFORCEMENT_POINT = "qos"


@dataclass(frozen=True)
class PortQos:
    """The shaping of one VM port on its host."""

    port_id: str
    mac: str
    vlan: int
    vm: str
    tenant: str
    min_bps: int
    max_bps: int
    burst_bytes: int = 0


@dataclass(frozen=True)
class TenantQos:
    """A tenant's aggregate on this host: its ports share ``max_bps`` and are owed ``min_bps``."""

    tenant: str
    min_bps: int
    max_bps: int
    port_ids: tuple[str, ...]


@dataclass(frozen=True)
class HostQos:
    host: str
    uplink_bps: int
    ports: tuple[PortQos, ...] = ()
    tenants: tuple[TenantQos, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> HostQos:
        raw = json.loads(text)
        return cls(
            host=raw["host"],
            uplink_bps=int(raw["uplink_bps"]),
            ports=tuple(PortQos(**p) for p in raw.get("ports", ())),
            tenants=tuple(
                TenantQos(**{**t, "port_ids": tuple(t["port_ids"])}) for t in raw.get("tenants", ())
            ),
        )
