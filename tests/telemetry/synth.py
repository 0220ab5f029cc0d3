"""Build sFlow v5 datagrams by hand: expanded samples, odd records, known totals.

Independent of the decoder (written from the specification's XDR layout), so a
test that round-trips through both checks the decoder, not itself.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def ether(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    *,
    vlan: int = 0,
    proto: int = 6,
    sport: int = 1234,
    dport: int = 80,
    payload: int = 0,
    tcp_flags: int = 0x18,
) -> bytes:
    """An Ethernet frame (optionally 802.1Q-tagged) with IPv4/IPv6 and TCP/UDP/ICMP."""
    mac = lambda m: bytes.fromhex(m.replace(":", ""))  # noqa: E731
    src, dst = ipaddress.ip_address(src_ip), ipaddress.ip_address(dst_ip)
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, tcp_flags, 1024, 0, 0)
    elif proto == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8 + payload, 0)
    else:
        l4 = struct.pack("!BBHI", sport, dport, 0, 0)  # ICMP type=sport, code=dport
    l4 += b"\0" * payload
    if src.version == 4:
        etype = 0x0800
        l3 = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, src.packed, dst.packed
        )
    else:
        etype = 0x86DD
        l3 = struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 64, src.packed, dst.packed)
    tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
    return mac(dst_mac) + mac(src_mac) + tag + struct.pack("!H", etype) + l3 + l4


def raw_header_record(frame: bytes, *, frame_length: int | None = None, snap: int = 128) -> bytes:
    hdr = frame[:snap]
    length = (frame_length if frame_length is not None else len(frame)) + 4  # + FCS
    body = struct.pack("!IIII", 1, length, 4, len(hdr)) + _pad(hdr)
    return struct.pack("!II", 1, len(body)) + body


def switch_record(src_vlan: int, dst_vlan: int = 0) -> bytes:
    return struct.pack("!IIIIII", 1001, 16, src_vlan, 0, dst_vlan, 0)


def flow_sample(
    records: list[bytes],
    *,
    seq: int = 1,
    source: int = 5,
    rate: int = 1,
    pool: int = 1,
    in_if: int = 5,
    out_if: int = 6,
    expanded: bool = False,
) -> bytes:
    if expanded:
        head = struct.pack(
            "!IIIIIIIIIII", seq, 0, source, rate, pool, 0, 0, in_if, 0, out_if, len(records)
        )
        fmt = 3
    else:
        head = struct.pack("!IIIIIIII", seq, source, rate, pool, 0, in_if, out_if, len(records))
        fmt = 1
    body = head + b"".join(records)
    return struct.pack("!II", fmt, len(body)) + body


@dataclass
class IfCounters:
    if_index: int = 5
    speed: int = 10_000_000_000
    in_octets: int = 0
    out_octets: int = 0
    in_discards: int = 0
    out_discards: int = 0
    in_errors: int = 0
    out_errors: int = 0


def counter_sample(c: IfCounters, *, seq: int = 1, expanded: bool = False) -> bytes:
    rec = struct.pack(
        "!IIQIIQIIIIIIQIIIIII",
        c.if_index,
        6,
        c.speed,
        1,
        3,
        c.in_octets,
        10,
        0,
        0,
        c.in_discards,
        c.in_errors,
        0,
        c.out_octets,
        10,
        0,
        0,
        c.out_discards,
        c.out_errors,
        0,
    )
    record = struct.pack("!II", 1, len(rec)) + rec
    other = struct.pack("!II", 2, 8) + b"\0" * 8  # an ethernet-counters record to skip
    if expanded:
        body = struct.pack("!IIII", seq, 0, c.if_index, 2) + other + record
        fmt = 4
    else:
        body = struct.pack("!III", seq, c.if_index, 2) + other + record
        fmt = 2
    return struct.pack("!II", fmt, len(body)) + body


def datagram(samples: list[bytes], *, agent: str = "192.0.2.1", seq: int = 1) -> bytes:
    a = ipaddress.ip_address(agent)
    head = struct.pack("!II", 5, 1 if a.version == 4 else 2) + a.packed
    head += struct.pack("!IIII", 0, seq, 1000, len(samples))
    return head + b"".join(samples)


def write_pcap(path: str, payloads: list[bytes], port: int = 6343) -> None:
    """A classic pcap of UDP/IPv4 datagrams to ``port`` on loopback, as tcpdump writes."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n, payload in enumerate(payloads):
        udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            n & 0xFFFF,
            0,
            64,
            17,
            0,
            bytes([127, 0, 0, 1]),
            bytes([127, 0, 0, 1]),
        )
        frame = b"\0" * 12 + b"\x08\x00" + ip + udp
        out.append(struct.pack("<IIII", 1_700_000_000 + n, 0, len(frame), len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))
