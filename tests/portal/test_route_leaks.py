"""Route leaks in a real browser: a partner asks, an operator approves, the peer revokes."""

from __future__ import annotations

from typing import Any

from tests.portal.conftest import Portal, expect, shot, sign_in
from tests.portal.test_partner import create_network


def _network_id(page: Any, name: str) -> str:
    page.goto("/route-leaks")
    item = page.locator("#network-ids li", has_text=f"{name}:")
    return str(item.locator("code").inner_text()).strip()


def test_a_partner_requests_an_operator_approves_and_the_peer_revokes(
    new_page: Any, portal: Portal
) -> None:
    globex = new_page()
    sign_in(globex, portal.globex)
    create_network(globex, "leak-db", cidr="10.92.0.0/24")
    peer_id = _network_id(globex, "leak-db")

    studio = new_page()
    sign_in(studio, portal.studio)
    create_network(studio, "leak-same", cidr="10.91.0.0/24")  # acme's range, another VRF
    same_id = _network_id(studio, "leak-same")

    acme = new_page()
    sign_in(acme, portal.acme)
    create_network(acme, "leak-web", cidr="10.91.0.0/24")
    acme.goto("/route-leaks")

    # Refusals at the field: not an id; then ranges that would make routing ambiguous.
    acme.get_by_label("Your network", exact=True).select_option(label="leak-web")
    acme.get_by_label("Peer network id").fill("not-an-id")
    with acme.expect_response(lambda r: r.request.method == "POST") as answer:
        acme.get_by_role("button", name="Request route leak").click()
    assert answer.value.status == 422
    expect(acme.locator("#f-peer_network_id")).to_have_attribute("aria-invalid", "true")
    acme.get_by_label("Peer network id").fill(same_id)
    with acme.expect_response(lambda r: r.request.method == "POST") as answer:
        acme.get_by_role("button", name="Request route leak").click()
    assert answer.value.status == 409
    expect(acme.locator("#f-peer_network_id-error")).to_contain_text("ambiguous")
    shot(acme, "partner-route-leak-refused")

    acme.get_by_label("Your network", exact=True).select_option(label="leak-web")
    acme.get_by_label("Peer network id").fill(peer_id)
    acme.get_by_role("button", name="Request route leak").click()
    expect(acme.locator(".flash")).to_contain_text("waiting for an operator")
    row = acme.locator("#leaks-table tr", has_text="leak-web")
    expect(row).to_contain_text("pending")
    expect(row).to_contain_text("10.92.0.0/24")
    expect(row.get_by_role("button", name="Approve")).to_have_count(0)  # not a partner's

    op = new_page()
    sign_in(op, portal.operator)
    op.goto("/route-leaks")
    op_row = op.locator("#leaks-table tr", has_text="leak-web")
    expect(op_row).to_contain_text("pending")
    shot(op, "operator-route-leaks-pending")
    op_row.get_by_role("button", name="Approve").click()
    expect(op.locator(".flash")).to_contain_text("approved")
    expect(op.locator("#leaks-table tr", has_text="leak-web")).to_contain_text("approved")

    globex.goto("/route-leaks")
    peer_row = globex.locator("#leaks-table tr", has_text="leak-web")
    expect(peer_row).to_contain_text("approved")
    peer_row.get_by_role("button", name="Revoke").click()
    expect(globex.locator(".flash")).to_contain_text("revoked")
    expect(globex.locator("#leaks-table")).not_to_contain_text("leak-web")
