"""Every reader of a device's stored policy hydrates its address sets, or is known not to
need them: a new reader of the IR or of the deferred text must be added here on purpose.

A reader that forgets sees the sets as the IR stores them — empty — and so denies
what the set would allow (tests/api/test_address_sets.py shows it); this test makes
the omission visible before it reaches a device.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fuyun

SRC = Path(fuyun.__file__).parent

# module -> why it may read a device's policy without hydrating through address_sets
ALLOWED = {
    "services/address_sets.py": "hydrates: from_json then the stored members",
    "services/enforcement.py": "defines rendered_text (the unhydrated, fail-closed reader)",
    "services/verification.py": "wraps both sides in address_sets.hydrate_all",
    "services/migration/checks.py": "compares ports' rules only, never set contents",
}
WATCHED = {("fuyun.policy.ir", "from_json"), ("fuyun.services.enforcement", "rendered_text")}


def _readers() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if (node.module, alias.name) in WATCHED:
                        found.setdefault(str(path.relative_to(SRC)), set()).add(alias.name)
    return found


def test_only_known_modules_read_device_policy_without_hydrating() -> None:
    readers = _readers()
    assert readers, "the scan found nothing: it no longer looks where it should"
    unknown = {m: names for m, names in readers.items() if m not in ALLOWED}
    assert not unknown, (
        f"{unknown} read a device's stored policy: use fuyun.services.address_sets "
        "(device_text, hydrate, hydrate_all) so address sets carry their members"
    )


def test_the_hydrating_readers_use_address_sets() -> None:
    for module in (
        "services/reconcile.py",
        "services/hoststate.py",
        "services/agents.py",
        "api/routes/policy.py",
        "services/verification.py",
    ):
        text = (SRC / module).read_text()
        assert "address_sets" in text, module
