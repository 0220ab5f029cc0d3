"""Addresses as fixed-width big-endian bytes.

Every address is stored as 16 bytes (IPv4 in the low 4) with its family beside it.
Bytes sort and compare the same on SQLite and PostgreSQL, so "the lowest free
range of this subnet" is an index lookup on either, and IPv6 fits where a 64-bit
integer would not.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from fuyun.domain.errors import InvalidInput

Family = Literal[4, 6]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
WIDTH = 16


def pack(value: int) -> bytes:
    return value.to_bytes(WIDTH, "big")


def unpack(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def to_address(value: int, family: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if family == 4 else ipaddress.IPv6Address(value)


def parse_network(text: str, field: str = "cidr") -> IPNetwork:
    """A CIDR with host bits clear, or a 422 naming ``field``."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidInput(f"'{text}' is not a valid CIDR: {exc}", field=field) from None


def parse_address(text: str, field: str = "ip") -> IPAddress:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidInput(f"'{text}' is not a valid IP address", field=field) from None


@dataclass(frozen=True, order=True)
class Span:
    """An inclusive integer interval of addresses (or VLAN ids)."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"empty span {self.first}..{self.last}")

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def contains(self, value: int) -> bool:
        return self.first <= value <= self.last

    def overlaps(self, other: Span) -> bool:
        return self.first <= other.last and other.first <= self.last


def span_of(network: IPNetwork) -> Span:
    return Span(int(network.network_address), int(network.broadcast_address))
