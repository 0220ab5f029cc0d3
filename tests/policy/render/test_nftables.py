"""nftables renderer: the kernel's own parser accepts every ruleset; lookups stay O(1).

``nft -c -f`` (check mode) parses and validates against the running kernel without
committing anything.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from fuyun.policy.ir import AddressSet, DevicePolicy
from fuyun.policy.render import nftables
from tests.policy.tools import run, tool
from tests.policy.world import ENDPOINTS, host_policy


def _policies() -> dict[str, DevicePolicy]:
    full = host_policy()
    return {
        "world": full,
        "no-ports": DevicePolicy("h0", "vswitch", ()),
        "v6-only-port": host_policy("h6", [ENDPOINTS[5]]),
        "empty-and-big-sets": replace(
            full,
            sets=tuple(
                AddressSet(
                    s.name,
                    s.family,
                    frozenset()
                    if s.family == 6
                    else frozenset(f"10.{i // 250}.{i % 250}.1" for i in range(2000)),
                )
                for s in full.sets
            ),
        ),
    }


@pytest.mark.parametrize("name", sorted(_policies()))
def test_nft_check_mode_accepts_the_ruleset(name: str, tmp_path: Path) -> None:
    nft = tool("nftables", "nft", root=True)
    path = tmp_path / f"{name}.nft"
    path.write_text(nftables.render(_policies()[name]))
    result = run([nft, "-c", "-f", str(path)])
    assert result.returncode == 0, result.stderr


def test_nft_rejects_a_broken_ruleset(tmp_path: Path) -> None:
    """The check is real: a typo in a rendered rule is caught."""
    nft = tool("nftables", "nft", root=True)
    path = tmp_path / "broken.nft"
    path.write_text(nftables.render(host_policy()).replace("tcp dport 22", "tcp dport 22-", 1))
    assert run([nft, "-c", "-f", str(path)]).returncode != 0


def _chain(text: str, name: str) -> list[str]:
    body = re.search(rf"\tchain {name} {{\n(.*?)\n\t}}", text, re.S)
    assert body is not None
    return [line.strip() for line in body.group(1).splitlines()]


def test_one_table_replaced_atomically_and_no_reject() -> None:
    text = nftables.render(host_policy())
    head = [line for line in text.splitlines() if not line.startswith("#")][:3]
    assert head == ["table inet fuyun {}", "delete table inet fuyun", "table inet fuyun {"]
    assert len(re.findall(r"^table ", text, re.M)) == 2  # the empty create + the definition
    assert "reject" not in text and "flush ruleset" not in text


def test_classification_is_one_map_lookup_however_many_ports() -> None:
    small = nftables.render(host_policy("h", ENDPOINTS[:1]))
    large = nftables.render(host_policy())
    assert (
        _chain(small, "forward")
        == _chain(large, "forward")
        == [
            "type filter hook forward priority filter; policy accept;",
            "ct state established,related accept",
            "ether saddr vmap @egress_ports",
            "ether daddr vmap @ingress_ports",
        ]
    )
    for e in ENDPOINTS:
        assert f"{e.mac} : jump port_{e.device}_egress" in large
        assert f"{e.mac} : jump port_{e.device}_ingress" in large
        assert f"{e.mac} : {e.vlan}" in large  # conntrack zone = VLAN


def test_port_chains_deny_first_allow_then_drop() -> None:
    text = nftables.render(host_policy())
    db = next(e for e in ENDPOINTS if e.ips[0] == "10.1.0.20")
    ingress = _chain(text, f"port_{db.device}_ingress")
    assert ingress[0] == "ct state invalid drop"
    assert ingress[-1] == "drop"
    deny = next(i for i, r in enumerate(ingress) if "tcp dport 23 drop" in r)
    allows = [
        i for i, r in enumerate(ingress) if r.split(" comment")[0].endswith("accept") and "sg:" in r
    ]
    assert allows and deny < min(allows)
    assert any("@sg_" in r and "tcp dport 5432 accept" in r for r in ingress)
    egress = _chain(text, f"port_{db.device}_egress")
    assert 'ip saddr != { 10.1.0.20 } drop comment "anti-spoofing"' in egress
    assert all(not r.split(" comment")[0].endswith("accept") for r in egress)  # AND ingress
