"""Approved route leaks on a ToR: inter-VRF static routes, NX-OS and Comware style."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import from_json, to_json
from fuyun.policy.render import comware, nxos
from fuyun.policy.render.nxos_parse import parse_nxos
from tests.policy.world import VRF1, VRF3, leaked_tor_policy, routed_tor_policy
from tests.support.capabilities import missing

FY1, FY3 = f"fy-{VRF1.hex[:16]}", f"fy-{VRF3.hex[:16]}"


def _parser() -> None:
    try:
        import ciscoconfparse2  # noqa: F401
    except ImportError as exc:
        missing("ciscoconfparse2", f"{exc} (pip install -e '.[test]')")


def test_routes_survive_the_stored_ir_and_leave_other_devices_digests_alone() -> None:
    policy = leaked_tor_policy()
    assert from_json(to_json(policy)) == policy
    assert "routes" not in to_json(routed_tor_policy())


def test_nxos_routes_parse_back_in_the_vrf_with_the_peer_vrf_declared() -> None:
    _parser()
    text = nxos.render(leaked_tor_policy())
    parsed = parse_nxos(text)
    assert parsed.routes == {
        (FY1, "10.9.0.0/24", "10.9.0.1", FY3),
        (FY1, "2001:db8:9::/64", "2001:db8:9::1", FY3),
    }
    assert FY3 in parsed.vrfs  # the next hop's VRF, though no SVI routes it here
    assert f"vrf context {FY1}\n  ip route 10.9.0.0/24 10.9.0.1 vrf {FY3}\n" in text
    # No leak, no route: the tenant VRFs stay closed.
    assert parse_nxos(nxos.render(routed_tor_policy())).routes == set()


def test_nxos_parser_refuses_a_route_into_an_undeclared_vrf() -> None:
    _parser()
    text = nxos.render(leaked_tor_policy()).replace(f"vrf {FY3}", "vrf fy-nowhere")
    with pytest.raises(InvalidInput, match="undeclared VRF"):
        parse_nxos(text)


def test_comware_routes_name_both_vpn_instances() -> None:
    text = comware.render(leaked_tor_policy())
    routes = [line for line in text.splitlines() if "route-static" in line]
    assert routes == [
        f"ip route-static vpn-instance {FY1} 10.9.0.0 24 vpn-instance {FY3} 10.9.0.1",
        f"ipv6 route-static vpn-instance {FY1} 2001:db8:9:: 64 vpn-instance {FY3} 2001:db8:9::1",
    ]
    assert f"ip vpn-instance {FY3}" in text
    assert "route-static" not in comware.render(routed_tor_policy())


def test_a_route_with_a_malformed_prefix_is_refused() -> None:
    bad = leaked_tor_policy()
    bad = replace(bad, routes=(replace(bad.routes[0], prefix="10.9.0.0/33"),))
    with pytest.raises(ValueError):
        nxos.render(bad)
