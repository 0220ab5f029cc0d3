"""Gateways on a ToR: each tenant subnet's SVI in its tenant's VRF, NX-OS and Comware style."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import Gateway, from_json, to_json
from fuyun.policy.render import comware, nxos
from fuyun.policy.render.nxos_parse import parse_nxos
from tests.policy.world import VRF1, VRF2, routed_tor_policy, tor_policy
from tests.support.capabilities import missing

FY1, FY2 = f"fy-{VRF1.hex[:16]}", f"fy-{VRF2.hex[:16]}"


def test_gateways_survive_the_stored_ir_and_leave_other_devices_digests_alone() -> None:
    policy = routed_tor_policy()
    assert from_json(to_json(policy)) == policy
    assert "gw" not in to_json(tor_policy())


def test_nxos_svis_parse_back_into_each_tenants_vrf() -> None:
    try:
        import ciscoconfparse2  # noqa: F401
    except ImportError as exc:
        missing("ciscoconfparse2", f"{exc} (pip install -e '.[test]')")
    text = nxos.render(routed_tor_policy())
    parsed = parse_nxos(text)
    assert parsed.svis == {
        100: (FY1, ("10.1.0.1/24", "2001:db8:1::1/64")),
        101: (FY1, ("10.1.1.1/24", "2001:db8:1:1::1/64")),
        200: (FY2, ("10.1.0.1/24",)),  # the same address, another tenant's VRF
    }
    assert {FY1, FY2} <= set(parsed.vrfs)
    assert "feature interface-vlan" in text
    assert 300 not in parsed.svis, "a transit VLAN gets no gateway"
    # Without gateways nothing changes: no SVI, no feature line.
    assert "interface Vlan" not in nxos.render(tor_policy())


def test_nxos_parser_refuses_an_svi_in_an_undeclared_vrf() -> None:
    try:
        import ciscoconfparse2  # noqa: F401
    except ImportError as exc:
        missing("ciscoconfparse2", f"{exc} (pip install -e '.[test]')")
    text = nxos.render(routed_tor_policy()).replace(f"vrf member {FY2}", "vrf member fy-nowhere")
    with pytest.raises(InvalidInput, match="undeclared VRF"):
        parse_nxos(text)


def test_comware_binds_each_vlan_interface_to_its_vpn_instance() -> None:
    text = comware.render(routed_tor_policy())
    blocks = {
        block.splitlines()[0]: block.splitlines()[1:]
        for block in text.split("#\n")
        if block.startswith("interface Vlan-interface")
    }
    assert blocks == {
        "interface Vlan-interface100": [
            f" ip binding vpn-instance {FY1}",
            " ip address 10.1.0.1 255.255.255.0",
            " ipv6 address 2001:db8:1::1/64",
        ],
        "interface Vlan-interface101": [
            f" ip binding vpn-instance {FY1}",
            " ip address 10.1.1.1 255.255.255.0",
            " ipv6 address 2001:db8:1:1::1/64",
        ],
        "interface Vlan-interface200": [
            f" ip binding vpn-instance {FY2}",
            " ip address 10.1.0.1 255.255.255.0",
        ],
    }
    assert f"ip vpn-instance {FY1}" in text and f"ip vpn-instance {FY2}" in text


def test_one_vlan_cannot_route_in_two_vrfs() -> None:
    policy = routed_tor_policy()
    clash = replace(
        policy, gateways=(*policy.gateways, Gateway(100, VRF2, "10.9.0.0/24", "10.9.0.1"))
    )
    with pytest.raises(InvalidInput, match="VLAN 100 would route in VRFs"):
        nxos.render(clash)
