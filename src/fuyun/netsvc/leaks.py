"""Route leaks as every router sees them: which prefixes of one VRF route into another.

A :class:`LeakPath` is an approved route leak reduced to what routes: side ``a`` (the
requesting network's VRF) exports its prefixes into side ``b``'s VRF, and ``b``
exports its own into ``a``. Routing is symmetric on purpose — a one-way route would
carry requests and drop their replies — so one value feeds the ToR's inter-VRF static
routes, the lab's router link and :mod:`fuyun.verify`, and they cannot disagree.

:func:`ambiguities` is the rule that keeps routing well defined: a prefix routed into
a VRF must not overlap any address range that VRF already has (its own subnets, or
what another leak brings in), or a packet to such an address could go two ways.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Export:
    """A prefix a VRF lends to the peer, and its gateway there (the ToR's next hop)."""

    prefix: str
    nexthop: str | None = None


@dataclass(frozen=True)
class LeakPath:
    leak_id: str
    vrf_id: str
    peer_vrf_id: str
    exports: tuple[Export, ...]  # side a's prefixes: routed in the peer VRF
    peer_exports: tuple[Export, ...]  # side b's prefixes: routed in side a's VRF
    name: str = ""  # how reports name it: "leak 1a2b3c4d (web/acme <-> db/bolt)"

    def imported_into(self, vrf_id: str) -> tuple[Export, ...]:
        """What this leak routes into ``vrf_id`` (the other side's exports)."""
        if vrf_id == self.vrf_id:
            return self.peer_exports
        if vrf_id == self.peer_vrf_id:
            return self.exports
        return ()

    def exported_by(self, vrf_id: str) -> tuple[Export, ...]:
        if vrf_id == self.vrf_id:
            return self.exports
        if vrf_id == self.peer_vrf_id:
            return self.peer_exports
        return ()

    def link(self, side: str) -> str:
        """The router interface of one side (``a`` or ``b``) of the lab's link, ≤15 chars."""
        return "fl" + hashlib.sha256(f"{self.leak_id}:{side}".encode()).hexdigest()[:11]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LeakPath:
        raw = json.loads(text)
        return cls(
            leak_id=raw["leak_id"],
            vrf_id=raw["vrf_id"],
            peer_vrf_id=raw["peer_vrf_id"],
            exports=tuple(Export(**e) for e in raw["exports"]),
            peer_exports=tuple(Export(**e) for e in raw["peer_exports"]),
            name=raw.get("name", ""),
        )


def overlapping(prefixes: Iterable[str], taken: Iterable[str]) -> list[tuple[str, str]]:
    """(prefix, taken range) pairs that share an address, same family only."""
    nets = [ipaddress.ip_network(t, strict=False) for t in taken]
    out = []
    for p in prefixes:
        net = ipaddress.ip_network(p, strict=False)
        for t in nets:
            if net.version == t.version and net.overlaps(t):  # type: ignore[arg-type]
                out.append((str(net), str(t)))
    return out


def ambiguities(
    incoming: Iterable[str], vrf_ranges: Iterable[str], other_imports: Iterable[str] = ()
) -> list[str]:
    """Why routing ``incoming`` into a VRF would be ambiguous (empty when it is not)."""
    out = [f"{p} overlaps {t}, already in the VRF" for p, t in overlapping(incoming, vrf_ranges)]
    out += [
        f"{p} overlaps {t}, routed into the VRF by another route leak"
        for p, t in overlapping(incoming, other_imports)
    ]
    return out
