"""Names both ToR dialects share, so a parse-back test can map text to classes."""

from __future__ import annotations

POLICY = "FUYUN-QOS"
#: The ToR's uplinks are bundled in this aggregate (fabric convention).
UPLINK_BUNDLE = 100


def class_name(vlan: int) -> str:
    return f"FUYUN-QOS-V{vlan}"


def kbps(bps: int) -> int:
    """Switch bandwidth statements are in kbit/s; round up so no guarantee shrinks."""
    return -(-bps // 1000)
