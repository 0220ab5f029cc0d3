"""Layer-2 table accounting: what a port joining or leaving a VLAN costs each switch.

The model, per the module's fabric kind:

- every switch that carries a VLAN learns the MAC of every port in it (one MAC
  entry per port per switch in the span);
- the switch that holds the gateway keeps one ARP entry per IP in the VLAN: the
  aggregation pair in a switched CLOS, the ToR in a routed CLOS;
- a ToR carries a VLAN while it has at least one port of it below; in a switched
  CLOS the aggregation pair carries it while any ToR does; a routed CLOS never lets
  a VLAN leave its ToR.

Pure functions over a snapshot; the caller claims the deltas in the database.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from fuyun.domain.errors import Conflict

TABLES = ("mac", "arp", "vlans")


@dataclass
class TableDelta:
    mac: int = 0
    arp: int = 0
    vlans: int = 0

    def is_zero(self) -> bool:
        return not (self.mac or self.arp or self.vlans)


@dataclass(frozen=True)
class SegmentView:
    """A VLAN segment as it stands: where it is carried and how many ports it has."""

    vlan: int
    switched: bool
    aggregation: tuple[uuid.UUID, ...]
    tor_ports: dict[uuid.UUID, int] = field(default_factory=dict)  # ToR -> ports below it

    @property
    def ports(self) -> int:
        return sum(self.tor_ports.values())

    @property
    def tors(self) -> set[uuid.UUID]:
        return {t for t, n in self.tor_ports.items() if n > 0}

    @property
    def span(self) -> set[uuid.UUID]:
        tors = self.tors
        if self.switched and tors:
            return tors | set(self.aggregation)
        return tors


@dataclass(frozen=True)
class Change:
    deltas: dict[uuid.UUID, TableDelta]
    joined: set[uuid.UUID]
    left: set[uuid.UUID]


def port_joins(view: SegmentView, tor: uuid.UUID, ips: int, tor_name: str = "") -> Change:
    """The cost of one more port (with ``ips`` addresses) in the segment, below ``tor``."""
    deltas: dict[uuid.UUID, TableDelta] = defaultdict(TableDelta)
    span = view.span
    joined: set[uuid.UUID] = set()
    if not view.switched and view.tors and tor not in view.tors:
        raise Conflict(
            f"routed-clos confines VLAN {view.vlan} to its ToR; {tor_name or tor} cannot join it",
            field="host",
            code="l2_unreachable",
        )
    existing = view.ports
    newcomers = [tor] if tor not in span else []
    if view.switched and not span:
        newcomers += list(view.aggregation)
    for sw in newcomers:
        deltas[sw].vlans += 1
        deltas[sw].mac += existing
        joined.add(sw)
    for sw in span | joined:
        deltas[sw].mac += 1
    for sw in _gateway_switches(view, tor):
        deltas[sw].arp += ips
    return Change(deltas=dict(deltas), joined=joined, left=set())


def port_leaves(view: SegmentView, tor: uuid.UUID, ips: int) -> Change:
    """The inverse of :func:`port_joins` for a port now below ``tor``."""
    if view.tor_ports.get(tor, 0) <= 0:
        raise ValueError("no port of this segment below that ToR")
    deltas: dict[uuid.UUID, TableDelta] = defaultdict(TableDelta)
    span = view.span
    for sw in span:
        deltas[sw].mac -= 1
    for sw in _gateway_switches(view, tor):
        deltas[sw].arp -= ips
    remaining = view.ports - 1
    left: set[uuid.UUID] = set()
    if view.tor_ports[tor] == 1:
        left.add(tor)
    if view.switched and remaining == 0:
        left |= set(view.aggregation)
    for sw in left:
        deltas[sw].vlans -= 1
        deltas[sw].mac -= remaining
    return Change(deltas=dict(deltas), joined=set(), left=left)


def _gateway_switches(view: SegmentView, tor: uuid.UUID) -> tuple[uuid.UUID, ...]:
    if view.switched and view.aggregation:
        return view.aggregation
    return (tor,)
