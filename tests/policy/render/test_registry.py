"""The registry: every (enforcement point, flavor) pair dispatches; unknown pairs are a 422."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import DevicePolicy
from fuyun.policy.render import RENDERERS, flavors, register, render
from tests.policy.world import host_policy, tor_policy, vm_policy


@pytest.mark.parametrize(
    ("point", "flavor", "marker"),
    [
        ("vswitch", "linux-bridge", "table inet fuyun"),
        ("vswitch", "ovs", "conj_id="),
        ("vm-iptables", "iptables", "*filter"),
        ("tor-acl", "nxos", "vlan access-map"),
        ("tor-acl", "comware", "qos vlan-policy"),
    ],
)
def test_each_pair_renders(point: str, flavor: str, marker: str) -> None:
    policy = {"vswitch": host_policy, "vm-iptables": vm_policy, "tor-acl": tor_policy}[point]()
    assert marker in render(policy, flavor)


def test_unknown_flavor_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        render(host_policy(), "nexus1000v")
    assert err.value.field == "flavor"
    assert "linux-bridge, ovs" in err.value.message


def test_unknown_enforcement_point_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="known flavors: none"):
        render(replace(host_policy(), enforcement_point="vepa"), "ovs")


def test_a_new_enforcement_point_is_one_registration() -> None:
    """How vepa would plug in: a function and a register call, no core change."""

    def fake(policy: DevicePolicy) -> str:
        return f"{len(policy.ports)} ports\n"

    try:
        register("test-point", "test-flavor", fake)
        policy = replace(host_policy(), enforcement_point="test-point")
        assert render(policy, "test-flavor") == "6 ports\n"
        assert flavors("test-point") == ["test-flavor"]
        with pytest.raises(ValueError):
            register("test-point", "test-flavor", lambda p: "")
    finally:
        RENDERERS.pop(("test-point", "test-flavor"), None)
