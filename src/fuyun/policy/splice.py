"""Splicing a device's stored IR: new entries for some hosts' ports, the rest as stored.

A ToR enforces for every host cabled to it (hundreds of ports), but a change touches
the ports of one or two of them. Compiling the whole ToR again would redo every
port; instead the changed hosts' ports are compiled afresh and put in place of
theirs in the stored document, whose other entries are kept as they are. The result
is the document :func:`fuyun.policy.ir.to_json` writes for a full compile, byte for
byte, provided the caller's premise holds: the ports of the hosts it did not name
compile as they did before (the same premise that lets a change recompile only the
hosts it affects). Pure: documents in, a document out.
"""

from __future__ import annotations

from typing import Any

from fuyun.policy.ir import (
    DevicePolicy,
    PortPolicy,
    RuleLists,
    document,
    endpoint_json,
    port_key,
    set_json,
)


def kept_ports(stored: dict[str, Any], hosts: set[str]) -> list[dict[str, Any]] | None:
    """The stored port entries on hosts other than ``hosts``, or None when the document
    cannot be spliced (written before rule lists were shared)."""
    if "rl" not in stored:
        return None
    return [p for p in stored["ports"] if p["host"] not in hosts]


def splice(
    stored: dict[str, Any], kept: list[dict[str, Any]], fresh: DevicePolicy
) -> dict[str, object] | None:
    """The document of ``kept`` (from :func:`kept_ports`) plus ``fresh``'s ports.

    ``fresh`` is the device compiled from the changed hosts' ports alone, with the
    device-wide parts (VLANs, gateways, trunks) already computed for all its ports.
    Address sets come from ``fresh`` where its rules use them, else from ``stored``.
    None when ``stored`` lacks a set its kept entries use: the caller compiles in full.
    """
    stored_lists = stored["rl"]
    # (place, entry, its rules: a stored list or a fresh port's), sorted into place.
    entries: list[tuple[tuple[str, str], dict[str, Any], object]] = [
        (port_key(p), dict(p), stored_lists[p["r"]]) for p in kept
    ]
    for pp in fresh.ports:
        e = pp.endpoint
        entries.append(((str(e.port_id), e.host or ""), endpoint_json(e), pp))
    entries.sort(key=lambda item: item[0])
    final = RuleLists()
    ports = []
    for _, entry, rules in entries:
        if isinstance(rules, PortPolicy):
            entry["r"] = final.of_rules(rules.ingress, rules.egress)
        else:
            entry["r"] = final.of_json(rules)  # type: ignore[arg-type]
        ports.append(entry)
    used = sorted(
        {r["m"]["set"] for rl in final.items for side in ("in", "out") for r in rl[side]} - {None}
    )
    new_sets = fresh.set_by_name()
    old_sets = {s["n"]: s for s in stored["sets"]}
    sets = []
    for name in used:
        if name in new_sets:
            sets.append(set_json(new_sets[name]))
        elif name in old_sets:
            sets.append(old_sets[name])
        else:
            return None
    return document(fresh, sets, final.items, ports)
