"""Splicing a stored ToR document equals the document of a full compile."""

from __future__ import annotations

import dataclasses

from fuyun.policy.compile import compile_device
from fuyun.policy.ir import to_json
from fuyun.policy.splice import kept_ports, splice
from tests.policy.world import ENDPOINTS, GATEWAYS, TRUNKS, snapshot

WIDE = {"vlans": [300, 200, 101, 100], "gateways": GATEWAYS, "trunks": TRUNKS}


def _tor(endpoints: list) -> dict[str, object]:  # type: ignore[type-arg]
    return to_json(compile_device(snapshot(), "tor1", "tor-acl", endpoints, **WIDE))


def _patched(stored: dict, changed: set[str], endpoints: list) -> dict[str, object] | None:  # type: ignore[type-arg]
    fresh = compile_device(
        snapshot(), "tor1", "tor-acl", [e for e in endpoints if e.host in changed], **WIDE
    )
    kept = kept_ports(stored, changed)
    assert kept is not None
    return splice(stored, kept, fresh)


def test_replacing_one_hosts_ports_gives_the_full_document() -> None:
    stored = _tor(ENDPOINTS)
    # h2's port moves to h1 and h1 gets another one: only h1 and h2 are compiled again.
    moved = [dataclasses.replace(e, host="h1") if e.host == "h2" else e for e in ENDPOINTS]
    extra = dataclasses.replace(ENDPOINTS[0], port_id=ENDPOINTS[0].port_id.__class__(int=7))
    now = [*moved, extra]
    assert _patched(stored, {"h1", "h2"}, now) == _tor(now)
    # Nothing changed on h2 alone: the same document again.
    assert _patched(stored, {"h2"}, ENDPOINTS) == stored


def test_a_port_on_two_hosts_keeps_both_entries_in_place() -> None:
    stored = _tor(ENDPOINTS)
    both = [*ENDPOINTS, dataclasses.replace(ENDPOINTS[0], host="h3")]
    patched = _patched(stored, {"h3"}, both)
    assert patched == _tor(both)
    hosts = [p["host"] for p in patched["ports"][:2]]  # type: ignore[index]
    assert hosts == ["h1", "h3"]


def test_a_set_missing_from_the_stored_document_refuses_the_splice() -> None:
    stored = _tor(ENDPOINTS)
    stored["sets"] = []
    fresh = compile_device(snapshot(), "tor1", "tor-acl", [], **WIDE)
    kept = kept_ports(stored, {"h2"})
    assert kept and splice(stored, kept, fresh) is None


def test_a_document_without_shared_lists_is_not_spliced() -> None:
    stored = _tor(ENDPOINTS)
    del stored["rl"]
    assert kept_ports(stored, {"h1"}) is None
