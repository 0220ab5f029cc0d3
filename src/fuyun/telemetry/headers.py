"""Parse the sampled packet header of an sFlow raw-packet record: Ethernet up to L4.

An exporter copies the first N bytes of a frame (OVS: 128), so every layer may be
cut short; parsing stops at the first layer that does not fit and returns what it
has, never raising. Addresses stay ``bytes`` (MAC 6, IPv4 4, IPv6 16): they are
the attribution keys as they are, and turning them into text is done only for
what is shown.
"""

from __future__ import annotations

from struct import Struct
from typing import NamedTuple

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
_IPV6_EXT = frozenset((0, 43, 44, 60))  # hop-by-hop, routing, fragment, destination

_U16 = Struct("!H")
_PORTS = Struct("!HH")
_ICMP = Struct("!BB")


class Header(NamedTuple):
    """What one sampled frame says about its flow. Absent layers are 0 / ``b""``."""

    dst_mac: bytes
    src_mac: bytes
    vlan: int
    ethertype: int
    src_ip: bytes
    dst_ip: bytes
    proto: int
    tos: int
    ttl: int
    src_port: int
    dst_port: int
    tcp_flags: int
    icmp_type: int
    icmp_code: int


EMPTY = Header(b"", b"", 0, 0, b"", b"", 0, 0, 0, 0, 0, 0, 0, 0)


def parse_ethernet(buf: bytes, off: int, end: int) -> Header:
    """Parse the Ethernet frame in ``buf[off:end]``; never raises on short input."""
    if end - off < 14:
        return EMPTY
    dst, src = buf[off : off + 6], buf[off + 6 : off + 12]
    (etype,) = _U16.unpack_from(buf, off + 12)
    p = off + 14
    vlan = 0
    # One or two tags (802.1Q, or QinQ's outer 802.1ad): the innermost VID is the segment's.
    while (etype in (ETH_P_8021Q, ETH_P_8021AD)) and end - p >= 4:
        tci, etype = _PORTS.unpack_from(buf, p)
        vlan = tci & 0x0FFF
        p += 4
    src_ip = dst_ip = b""
    proto = tos = ttl = 0
    if etype == ETH_P_IP:
        if end - p < 20:
            return Header(dst, src, vlan, etype, b"", b"", 0, 0, 0, 0, 0, 0, 0, 0)
        vihl = buf[p]
        ihl = (vihl & 0x0F) * 4
        tos, ttl, proto = buf[p + 1], buf[p + 8], buf[p + 9]
        src_ip, dst_ip = buf[p + 12 : p + 16], buf[p + 16 : p + 20]
        (frag,) = _U16.unpack_from(buf, p + 6)
        if frag & 0x1FFF or ihl < 20:
            # A later fragment carries no L4 header.
            return Header(dst, src, vlan, etype, src_ip, dst_ip, proto, tos, ttl, 0, 0, 0, 0, 0)
        p += ihl
    elif etype == ETH_P_IPV6:
        if end - p < 40:
            return Header(dst, src, vlan, etype, b"", b"", 0, 0, 0, 0, 0, 0, 0, 0)
        (vtc,) = _U16.unpack_from(buf, p)
        tos = (vtc >> 4) & 0xFF
        proto, ttl = buf[p + 6], buf[p + 7]
        src_ip, dst_ip = buf[p + 8 : p + 24], buf[p + 24 : p + 40]
        p += 40
        while proto in _IPV6_EXT and end - p >= 8:
            nxt = buf[p]
            p += 8 if proto == 44 else (buf[p + 1] + 1) * 8
            proto = nxt
    else:
        return Header(dst, src, vlan, etype, b"", b"", 0, 0, 0, 0, 0, 0, 0, 0)
    sport = dport = flags = itype = icode = 0
    if proto == PROTO_TCP:
        if end - p >= 14:
            sport, dport = _PORTS.unpack_from(buf, p)
            flags = buf[p + 13]
        elif end - p >= 4:
            sport, dport = _PORTS.unpack_from(buf, p)
    elif proto == PROTO_UDP:
        if end - p >= 4:
            sport, dport = _PORTS.unpack_from(buf, p)
    elif (proto in (PROTO_ICMP, PROTO_ICMPV6)) and end - p >= 2:
        itype, icode = _ICMP.unpack_from(buf, p)
    return Header(
        dst, src, vlan, etype, src_ip, dst_ip, proto, tos, ttl, sport, dport, flags, itype, icode
    )


def mac_text(mac: bytes) -> str:
    return mac.hex(":")


def ip_text(addr: bytes) -> str:
    """``bytes`` of 4 or 16 as the usual text form; ``""`` for no address."""
    import ipaddress

    if not addr:
        return ""
    return str(ipaddress.ip_address(addr))
