"""The stored form of the IR: exact round trip, rule lists shared, older documents read."""

from __future__ import annotations

import dataclasses
import json

from fuyun.policy.ir import Action, from_json, to_json
from tests.policy.world import host_policy, routed_tor_policy, tor_policy, vm_policy


def test_every_device_round_trips_exactly() -> None:
    for policy in (host_policy(), vm_policy(1), tor_policy(), routed_tor_policy()):
        doc = json.loads(json.dumps(to_json(policy)))  # as the store hands it back
        assert from_json(doc) == policy
        assert to_json(from_json(doc)) == doc


def test_ports_with_the_same_rules_share_one_list() -> None:
    policy = tor_policy()
    doc = to_json(policy)
    distinct = {(p.ingress, p.egress) for p in policy.ports}
    assert len(doc["rl"]) == len(distinct) < len(policy.ports)  # type: ignore[arg-type]
    assert all("in" not in p and "out" not in p for p in doc["ports"])  # type: ignore[union-attr]
    # Read back, ports of one list share its tuples again.
    ports = from_json(doc).ports
    assert len({id(p.ingress) for p in ports}) == len(distinct)


def test_equal_rules_are_shared_by_value_and_unequal_ones_are_kept_apart() -> None:
    policy = tor_policy()
    first = policy.ports[0]
    # An equal copy (not the compiler's tuple) shares the list; one changed rule does not.
    # (Distinct tuples, as ports of group sets with equal rules have them.)
    copy = dataclasses.replace(
        policy.ports[1], ingress=tuple([*first.ingress]), egress=tuple([*first.egress])
    )
    rule = first.ingress[-1]
    corrupt = dataclasses.replace(
        policy.ports[2],
        ingress=(*first.ingress[:-1], dataclasses.replace(rule, action=Action.DENY)),
        egress=tuple([*first.egress]),
    )
    changed = dataclasses.replace(policy, ports=(first, copy, corrupt))
    doc = to_json(changed)
    assert [p["r"] for p in doc["ports"]] == [0, 0, 1]  # type: ignore[index]
    assert from_json(doc) == changed


def test_a_document_written_before_rule_lists_were_shared_is_read() -> None:
    policy = tor_policy()
    doc = to_json(policy)
    lists = doc.pop("rl")
    for p in doc["ports"]:  # type: ignore[attr-defined]
        rl = lists[p.pop("r")]  # type: ignore[index]
        p["in"], p["out"] = rl["in"], rl["out"]
    assert from_json(doc) == policy
