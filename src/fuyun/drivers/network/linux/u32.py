"""u32 keys at negative offsets, which pyroute2 0.9's key parser cannot express.

A VM port's traffic is classified on the QoS ifbs by its MAC: the source MAC
(bytes 6 to 11 of the Ethernet header, 8 to 3 bytes *before* the network header,
where u32 offsets count from) or the destination MAC (14 to 9 bytes before).
pyroute2 packs string keys into a 256-byte array indexed by offset, so ``-8``
silently lands at byte 248; and it decodes keys 4 bytes off.
This module encodes ``(mask, value, offset)`` keys exactly as ``tc`` does and
reads them back from the raw attribute, leaving string keys to pyroute2.
"""

from __future__ import annotations

import struct
from typing import Any

from pyroute2.netlink import nla
from pyroute2.netlink.rtnl.tcmsg import cls_u32

Key = tuple[int, int, int]  # mask, value, offset

_SEL = cls_u32.options.u32_sel
_pyroute2_encode = _SEL.encode
_SEL_HEADER = 20  # nla header 4 + struct tc_u32_sel 16
_KEY = struct.Struct(">IIii")


def _encode(self: Any) -> None:
    keys = self["keys"]
    if not keys or not isinstance(keys[0], tuple):
        return _pyroute2_encode(self)
    self["nkeys"] = len(keys)
    self["flags"] = 1  # TC_U32_TERMINAL: the match decides, no hash table walk
    nla.encode(self)
    offset = self.offset + _SEL_HEADER
    for mask, value, off in keys:
        if len(self.data) < offset + 16:
            self.data.extend(bytes(offset + 16 - len(self.data)))
        struct.pack_into(">II", self.data, offset, mask, value)
        struct.pack_into("=ii", self.data, offset + 8, off, 0)
        offset += 16
    self.length = offset - self.offset
    struct.pack_into("H", self.data, self.offset, self.length)
    return None


_SEL.encode = _encode


def mac_keys(mac: str, offset: int = -8) -> list[Key]:
    """Keys matching frames with ``mac`` at ``offset`` from the network header: -8 is
    the source MAC, -14 the destination MAC of an Ethernet frame."""
    raw = bytes(int(b, 16) for b in mac.split(":"))
    hi, lo = struct.unpack(">IH", raw)
    return [(0xFFFFFFFF, hi, offset), (0xFFFF0000, lo << 16, offset + 4)]


def read_keys(sel: Any) -> list[Key]:
    """The selector's keys, decoded from the raw attribute at the right offset."""
    out = []
    for i in range(sel["nkeys"]):
        start = sel.offset + _SEL_HEADER + 16 * i
        mask, value = struct.unpack_from(">II", sel.data, start)
        (off,) = struct.unpack_from("=i", sel.data, start + 8)
        out.append((mask, value, off))
    return out
