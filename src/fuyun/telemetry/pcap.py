"""Read the UDP payloads of a classic pcap file: sFlow captured by ``tcpdump``, replayed.

The collector replays such a file offline (``fuyun collector --pcap``), as pmacct's
``sfacctd -I`` does, so the same bytes feed fixtures, tests and benchmarks. Only
what that needs: classic pcap (either byte order, µs or ns), Ethernet or Linux
cooked link types, IPv4/IPv6 without extension headers, UDP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from struct import Struct

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}
LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL = 1, 113


def udp_payloads(path: Path | str, port: int | None = 6343) -> Iterator[bytes]:
    """Yield each UDP payload (to ``port``, or any with ``None``) in capture order."""
    data = Path(path).read_bytes()
    order = _MAGICS.get(data[:4])
    if order is None:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = Struct(order + "I").unpack_from(data, 20)[0]
    record = Struct(order + "IIII")
    p = 24
    while p + 16 <= len(data):
        _, _, caplen, _ = record.unpack_from(data, p)
        if p + 16 + caplen > len(data):
            break  # a record still being written
        frame = data[p + 16 : p + 16 + caplen]
        p += 16 + caplen
        payload = _udp(frame, linktype, port)
        if payload is not None:
            yield payload


def _udp(frame: bytes, linktype: int, port: int | None) -> bytes | None:
    if linktype == LINKTYPE_ETHERNET:
        off, etype = 14, int.from_bytes(frame[12:14], "big")
    elif linktype == LINKTYPE_LINUX_SLL:
        off, etype = 16, int.from_bytes(frame[14:16], "big")
    else:
        return None
    if etype == 0x0800:
        ihl = (frame[off] & 0x0F) * 4
        proto, l4 = frame[off + 9], off + ihl
    elif etype == 0x86DD:
        proto, l4 = frame[off + 6], off + 40
    else:
        return None
    if proto != 17 or len(frame) < l4 + 8:
        return None
    dport = int.from_bytes(frame[l4 + 2 : l4 + 4], "big")
    if port is not None and dport != port:
        return None
    return frame[l4 + 8 :]
