"""A minimal DHCPv6 client for tests: SOLICIT with a DUID-LL, print the address offered.

busybox in Debian has no ``udhcpc6``; this sends a SOLICIT (client id DUID-LL built
from the MAC, one IA_NA) to ``ff02::1:2`` on ``eth0`` and prints the IA address of
the first ADVERTISE or REPLY, or exits non-zero. Run inside the VM's namespace:
``python -m tests.support.dhcpv6_client MAC``.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

SOLICIT, ADVERTISE, REPLY = 1, 2, 7
CLIENT_ID, IA_NA, IA_ADDR, ELAPSED = 1, 3, 5, 8


def _option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def _options(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(body) >= 4:
        code, size = struct.unpack("!HH", body[:4])
        out.append((code, body[4 : 4 + size]))
        body = body[4 + size :]
    return out


def offered(mac: str, ifname: str = "eth0", tries: int = 10) -> str | None:
    index = socket.if_nametoindex(ifname)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    s.bind(("::", 546))
    s.settimeout(1.0)
    tid = os.urandom(3)
    duid = struct.pack("!HH", 3, 1) + bytes.fromhex(mac.replace(":", ""))
    msg = (
        bytes([SOLICIT])
        + tid
        + _option(CLIENT_ID, duid)
        + _option(IA_NA, struct.pack("!III", 1, 0, 0))
        + _option(ELAPSED, b"\0\0")
    )
    for _ in range(tries):
        s.sendto(msg, ("ff02::1:2", 547, 0, index))
        try:
            data, _ = s.recvfrom(2048)
        except TimeoutError:
            continue
        if data[0] not in (ADVERTISE, REPLY) or data[1:4] != tid:
            continue
        for code, value in _options(data[4:]):
            if code == IA_NA:
                for inner, addr in _options(value[12:]):
                    if inner == IA_ADDR:
                        return socket.inet_ntop(socket.AF_INET6, addr[:16])
        return None
    return None


if __name__ == "__main__":
    got = offered(sys.argv[1])
    print(got or "none")
    sys.exit(0 if got else 1)
