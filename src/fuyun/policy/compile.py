"""Compile intent into per-device enforcement IR. Pure: a snapshot in, IR out.

Semantics (what verify proves and the renderers enforce):

- Default deny in both directions, stateful: replies to an allowed flow pass.
- A flow from port A to port B passes when A's egress rules allow it, B's ingress
  rules allow it, and no operator ``deny`` global rule matches on either side.
- Operator global rules come first and tenants cannot override them: a global
  ``deny`` beats any tenant allow; a global ``allow`` (e.g. monitoring from an
  infrastructure range) applies to every port.
- A security group rule's remote side is a CIDR, another group (its members'
  addresses, as a named set), or anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from fuyun.policy.ir import (
    Action,
    AddressSet,
    DevicePolicy,
    Direction,
    Endpoint,
    Gateway,
    Match,
    PortPolicy,
    Rule,
    Trunk,
    set_name,
)


@dataclass(frozen=True)
class GroupRule:
    id: uuid.UUID
    group_id: uuid.UUID
    direction: Direction
    family: int
    protocol: str = "any"
    port_min: int | None = None
    port_max: int | None = None
    remote_cidr: str | None = None
    remote_group_id: uuid.UUID | None = None


@dataclass(frozen=True)
class GlobalRule:
    id: uuid.UUID
    action: Action
    direction: Direction
    family: int
    protocol: str = "any"
    port_min: int | None = None
    port_max: int | None = None
    remote_cidr: str | None = None
    priority: int = 100


@dataclass
class PolicySnapshot:
    """The intent the compiler needs, gathered by the caller.

    Fill it, then compile from it: the compiler memoises what every device shares
    (the ordered rules of a set of groups, the set index, each set's contents) on
    first use, so the snapshot must not change once compiling has begun.
    """

    rules: dict[uuid.UUID, list[GroupRule]] = field(default_factory=dict)
    # Member addresses of every group a rule refers to, by family.
    members: dict[uuid.UUID, dict[int, set[str]]] = field(default_factory=dict)
    global_rules: list[GlobalRule] = field(default_factory=list)
    _memo: _Memo | None = field(default=None, init=False, repr=False, compare=False)

    def memo(self) -> _Memo:
        if self._memo is None:
            self._memo = _Memo(self)
        return self._memo


class _Memo:
    """What compiling many devices from one snapshot would otherwise redo per port or device."""

    def __init__(self, snapshot: PolicySnapshot) -> None:
        self.snapshot = snapshot
        ordered = sorted(
            snapshot.global_rules, key=lambda g: (g.action != Action.DENY, g.priority, str(g.id))
        )
        self.globals = [_global(g) for g in ordered]
        self.rules_of: dict[frozenset[uuid.UUID], tuple[tuple[Rule, ...], tuple[Rule, ...]]] = {}
        self.set_index = {set_name(g, fam): (g, fam) for g in snapshot.members for fam in (4, 6)}
        self.sets: dict[str, AddressSet] = {}

    def port_rules(self, groups: frozenset[uuid.UUID]) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
        """(ingress, egress) for a port in exactly these groups; ports share the tuples."""
        cached = self.rules_of.get(groups)
        if cached is not None:
            return cached
        by_direction: dict[Direction, list[Rule]] = {Direction.INGRESS: [], Direction.EGRESS: []}
        for g in self.globals:
            by_direction[g.match.direction].append(g)
        own: set[Rule] = set()
        for group in groups:
            for rule in self.snapshot.rules.get(group, ()):
                own.add(_group_rule(rule))
        for rule in sorted(own, key=lambda r: (r.match.sort_key(), r.origin)):
            by_direction[rule.match.direction].append(rule)
        result = (tuple(by_direction[Direction.INGRESS]), tuple(by_direction[Direction.EGRESS]))
        self.rules_of[groups] = result
        return result

    def address_set(self, name: str) -> AddressSet:
        cached = self.sets.get(name)
        if cached is None:
            group, family = self.set_index.get(name, (None, 4 if name.endswith("v4") else 6))
            members = self.snapshot.members.get(group, {}) if group else {}
            cached = AddressSet(name, family, frozenset(members.get(family, ())))
            self.sets[name] = cached
        return cached


def _global(rule: GlobalRule) -> Rule:
    return Rule(
        rule.action,
        Match(
            rule.direction,
            rule.family,
            rule.protocol,
            rule.port_min,
            rule.port_max,
            None,
            rule.remote_cidr,
        ),
        f"global:{rule.id}",
    )


def _group_rule(rule: GroupRule) -> Rule:
    remote_set = (
        set_name(rule.remote_group_id, rule.family) if rule.remote_group_id is not None else None
    )
    return Rule(
        Action.ALLOW,
        Match(
            rule.direction,
            rule.family,
            rule.protocol,
            rule.port_min,
            rule.port_max,
            remote_set,
            rule.remote_cidr,
        ),
        f"sg:{rule.id}",
    )


def compile_port(snapshot: PolicySnapshot, endpoint: Endpoint) -> PortPolicy:
    ingress, egress = snapshot.memo().port_rules(frozenset(endpoint.groups))
    return PortPolicy(endpoint, ingress, egress)


def referenced_sets(policies: Iterable[PortPolicy]) -> set[str]:
    return {
        r.match.remote_set for p in policies for r in (*p.ingress, *p.egress) if r.match.remote_set
    }


def address_sets(snapshot: PolicySnapshot, names: set[str]) -> tuple[AddressSet, ...]:
    """The contents of every named set the device's rules use."""
    memo = snapshot.memo()
    return tuple(memo.address_set(name) for name in sorted(names))


def compile_device(
    snapshot: PolicySnapshot,
    device: str,
    enforcement_point: str,
    endpoints: Iterable[Endpoint],
    vlans: Iterable[int] = (),
    gateways: Iterable[Gateway] = (),
    trunks: Iterable[Trunk] = (),
) -> DevicePolicy:
    # Port, then host: a port that is moving is enforced on both its hosts, and a ToR
    # above both holds two entries, in an order that does not depend on the query's.
    ordered = sorted(endpoints, key=lambda e: (e.port_id, e.host or ""))
    ports = tuple(compile_port(snapshot, e) for e in ordered)
    return DevicePolicy(
        device=device,
        enforcement_point=enforcement_point,
        ports=ports,
        sets=address_sets(snapshot, referenced_sets(ports)),
        vlans=tuple(sorted(set(vlans))),
        gateways=tuple(sorted(set(gateways))),
        trunks=tuple(sorted(trunks, key=Trunk.sort_key)),
    )
