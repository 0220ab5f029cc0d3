"""The generation marker: what the device says it enforces, kept on the device itself.

Each part the driver owns carries one marker — a comment on a ``fuyun_state``
chain of its nftables table, or the alias of the QoS ifb device — reading
``fuyun host=H gen=N digest=D live=F``. ``live`` is a fingerprint of the part's
state as the kernel printed it right after the apply; ``observe`` recomputes it,
so a rule deleted by hand, a port moved to another bridge or a class changed
with ``tc`` shows as drift, and a driver restarted on the host still knows what
it applied (nothing is kept in files or in memory).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_MARKER = re.compile(
    r"^fuyun host=(?P<host>\S+) gen=(?P<gen>\d+) digest=(?P<digest>[0-9A-Za-z_.:-]+) "
    r"live=(?P<live>[0-9a-f]+)$"
)


@dataclass(frozen=True)
class Marker:
    host: str
    generation: int
    digest: str
    live: str

    def text(self) -> str:
        return f"fuyun host={self.host} gen={self.generation} digest={self.digest} live={self.live}"

    @classmethod
    def parse(cls, text: str | None) -> Marker | None:
        m = _MARKER.match((text or "").strip())
        if m is None:
            return None
        return cls(m["host"], int(m["gen"]), m["digest"], m["live"])


def fingerprint(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
