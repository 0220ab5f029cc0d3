"""What one network's DHCP and DNS service must hand out: exactly what IPAM allocated.

A :class:`DhcpScope` is the desired state of the device ``("network", ID, "dhcp")``:
the network's subnets (gateway, prefix, MTU), one static reservation per port (MAC,
address, host name) and the DNS zone of the network. There is no dynamic pool: an
address the scope does not list is never offered, so DHCP cannot disagree with IPAM.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass

ENFORCEMENT_POINT = "dhcp"
_LABEL = re.compile(r"[^a-z0-9-]+")


def label(name: str) -> str:
    """A DNS label from a fuyun name: lower case, ``.`` and ``_`` become ``-``, 63 at most."""
    text = _LABEL.sub("-", name.lower()).strip("-")[:63].strip("-")
    return text or "x"


def zone_of(network: str, tenant: str, base_zone: str) -> str:
    """``NETWORK.TENANT.<zone>``: a VM is ``VM.NETWORK.TENANT.<zone>``."""
    return f"{label(network)}.{label(tenant)}.{base_zone.strip('.')}"


@dataclass(frozen=True)
class SubnetScope:
    cidr: str
    gateway: str | None


@dataclass(frozen=True)
class Reservation:
    mac: str
    address: str
    hostname: str  # a DNS label: the VM's name (the port's, without a VM)


@dataclass(frozen=True)
class DhcpScope:
    network_id: str
    network: str
    tenant: str
    vlans: tuple[int, ...]
    zone: str
    mtu: int
    enabled: bool
    subnets: tuple[SubnetScope, ...]
    reservations: tuple[Reservation, ...]
    dns_server: str | None = None  # the address the service answers on (a gateway's peer)

    def names(self) -> dict[str, str]:
        """Fully qualified name -> address, for every reservation."""
        return {f"{r.hostname}.{self.zone}": r.address for r in self.reservations}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> DhcpScope:
        raw = json.loads(text)
        return cls(
            **{
                **raw,
                "vlans": tuple(raw["vlans"]),
                "subnets": tuple(SubnetScope(**s) for s in raw["subnets"]),
                "reservations": tuple(Reservation(**r) for r in raw["reservations"]),
            }
        )


def reservation_names(reservations: list[tuple[str, str, str]]) -> list[Reservation]:
    """(mac, address, name) -> reservations with DNS-safe host names, unique in the zone.

    Two NICs of one VM on the network, or two names that map to one label, get
    ``-2``, ``-3``… in address order (IPv4 first), so every reservation resolves; the
    IPv4 and IPv6 address of one NIC (one MAC) share its name.
    """
    taken: dict[str, int] = {}
    named: dict[str, str] = {}
    out = []

    def order(r: tuple[str, str, str]) -> tuple[int, int]:
        address = ipaddress.ip_address(r[1])
        return address.version, int(address)

    for mac, address, name in sorted(reservations, key=order):
        if mac not in named:
            base = label(name)
            n = taken.get(base, 0) + 1
            taken[base] = n
            named[mac] = base if n == 1 else f"{base}-{n}"
        out.append(Reservation(mac, address, named[mac]))
    return out
