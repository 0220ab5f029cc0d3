"""MAC addresses: a configurable OUI prefix and random low bits.

Random rather than sequential so that concurrent allocators rarely collide; the
unique index on ports is the real guard, and a collision is retried.
"""

from __future__ import annotations

import re
import secrets

from fuyun.domain.errors import InvalidInput

OUI = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){2}$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
DEFAULT_OUI = "fa:16:3e"


def check_oui(oui: str) -> str:
    oui = oui.lower()
    if not OUI.match(oui):
        raise InvalidInput(f"MAC prefix '{oui}' must look like 'fa:16:3e'", field="mac_oui")
    if int(oui[:2], 16) & 1:
        raise InvalidInput(
            "MAC prefix must be unicast (low bit of the first octet clear)", field="mac_oui"
        )
    return oui


def random_mac(oui: str = DEFAULT_OUI) -> str:
    low = secrets.token_bytes(3)
    return oui + ":" + ":".join(f"{b:02x}" for b in low)


def normalize_mac(mac: str, field: str = "mac") -> str:
    m = mac.strip().lower().replace("-", ":")
    if not MAC.match(m):
        raise InvalidInput(f"'{mac}' is not a MAC address", field=field)
    if int(m[:2], 16) & 1:
        raise InvalidInput(f"'{mac}' is a multicast MAC", field=field)
    return m
