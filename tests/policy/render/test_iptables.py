"""vm-iptables renderer: one text that iptables-restore and ip6tables-restore both accept."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuyun.policy.ir import Action, AddressSet, Direction, Match, Rule
from fuyun.policy.render import iptables
from tests.policy.tools import run, tool
from tests.policy.world import ENDPOINTS, vm_policy


@pytest.mark.parametrize("n", range(1, len(ENDPOINTS) + 1))
@pytest.mark.parametrize("binary", ["iptables-restore", "ip6tables-restore"])
def test_restore_test_mode_accepts_the_text(n: int, binary: str) -> None:
    restore = tool("iptables", binary, root=True)
    result = run([restore, "--test"], iptables.render(vm_policy(n)))
    assert result.returncode == 0, result.stderr


def test_restore_test_mode_rejects_a_broken_text() -> None:
    restore = tool("iptables", "iptables-restore", root=True)
    text = iptables.render(vm_policy(1)).replace("--dport 80:443", "--dport 80:99999", 1)
    assert run([restore, "--test"], text).returncode != 0


def test_each_family_on_its_own_lines_and_default_drop() -> None:
    text = iptables.render(vm_policy(1))
    lines = text.splitlines()
    assert lines[2:6] == [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT DROP [0:0]",
    ]
    assert lines[-1] == "COMMIT"
    for line in lines:
        if line.startswith("-4 "):
            assert "2001:" not in line
        if line.startswith("-6 ") and (" -s " in line or " -d " in line):
            assert "10." not in line and "192." not in line
        if line.startswith("-A") or line.startswith(("-4 -A", "-6 -A")):
            assert " -j " in line
    state = lines.index("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    first_rule = next(i for i, line in enumerate(lines) if "--comment" in line)
    assert state < first_rule  # replies pass before any rule is consulted


def test_denies_precede_allows_and_sets_are_expanded_inline() -> None:
    p = vm_policy(3)  # db: accepts 5432 from the web set
    text = iptables.render(p)
    inputs = [line for line in text.splitlines() if "-A INPUT" in line and "--comment" in line]
    verdicts = [line.rsplit(" ", 1)[1] for line in inputs]
    assert verdicts == sorted(verdicts, key=lambda v: v != "DROP")
    web = next(s for s in p.sets if s.family == 4)
    assert "ipset" not in text and "-m set" not in text
    assert len([line for line in inputs if "--dport 5432" in line and "-4" in line]) == len(
        iptables.set_prefixes(web)
    )


def test_an_empty_set_renders_no_rule_at_all() -> None:
    p = vm_policy(1)
    empty = AddressSet("sg_empty_v4", 4, frozenset())
    rule = Rule(
        Action.ALLOW, Match(Direction.INGRESS, 4, "tcp", 1, 1, remote_set=empty.name), "sg:empty"
    )
    port = replace(p.ports[0], ingress=(rule,))
    text = iptables.render(replace(p, ports=(port,), sets=(*p.sets, empty)))
    assert "sg:empty" not in text
