"""A network's DHCP and DNS, switched on and off in the browser."""

from __future__ import annotations

from typing import Any

from tests.portal.conftest import Portal, expect, shot, sign_in


def test_a_partner_creates_a_static_network_and_turns_dhcp_on(
    new_page: Any, portal: Portal
) -> None:
    page = new_page()
    sign_in(page, portal.acme)
    page.goto("/networks")
    page.get_by_role("textbox", name="Name", exact=True).fill("static-net")
    page.get_by_label("CIDR").fill("10.44.0.0/24")
    dhcp = page.get_by_role("checkbox", name="DHCP and DNS for its VMs")
    expect(dhcp).to_be_checked()
    dhcp.uncheck()
    page.get_by_role("button", name="Create network").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Network static-net")
    expect(page.locator("#dhcp-state")).to_contain_text("Off")
    page.get_by_role("button", name="Turn on DHCP and DNS").click()
    expect(page.locator(".flash")).to_contain_text("DHCP and DNS on for static-net")
    expect(page.locator("#dhcp-state")).to_contain_text("static-net.acme.fuyun.internal")
    expect(page.locator("#dhcp-state")).to_contain_text("10.44.0.1")
    shot(page, "partner-network-dhcp")
