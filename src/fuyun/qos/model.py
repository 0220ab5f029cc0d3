"""What the QoS compiler reads: ports with their policies, per host, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

MBPS = 1_000_000


@dataclass(frozen=True)
class Rates:
    """A policy's numbers: Mbit/s and bytes, as the API speaks them."""

    guarantee_mbps: int
    ceiling_mbps: int
    burst_bytes: int = 0


@dataclass(frozen=True)
class PortRow:
    """A port bound to a host, with its port policy (if any)."""

    port_id: str
    mac: str
    vlan: int
    vm: str
    tenant: str
    rates: Rates | None


@dataclass(frozen=True)
class HostInput:
    host: str
    tor: str
    nic_mbps: int
    ports: tuple[PortRow, ...]
    aggregates: dict[str, Rates]  # tenant name -> aggregate policy
