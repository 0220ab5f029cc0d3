"""Security groups in a real browser: rules edited with errors in place, VMs that use them,
another partner who cannot see them, and the operator's isolation report."""

from __future__ import annotations

from typing import Any

from tests.portal.conftest import Portal, expect, shot, sign_in
from tests.portal.test_partner import apply_for_vms, create_network


def add_rule(page: Any, protocol: str, port: str = "", cidr: str = "", group: str = "") -> None:
    page.get_by_label("Direction").select_option("ingress")
    page.get_by_label("Protocol").select_option(protocol)
    page.get_by_label("From port").fill(port)
    page.get_by_label("Remote CIDR").fill(cidr)
    page.get_by_label("Remote group").select_option(group)
    page.get_by_role("button", name="Add rule").click()


def test_partner_edits_a_security_group_and_uses_it_for_vms(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.acme)
    page.goto("/security-groups")
    page.get_by_role("textbox", name="Name", exact=True).fill("web tier")
    page.get_by_role("button", name="Create security group").click()
    expect(page.locator("#f-name-error")).to_contain_text("letters, digits")
    page.get_by_role("textbox", name="Name", exact=True).fill("frontend")
    page.get_by_role("button", name="Create security group").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security group frontend")
    group_url = page.url

    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        add_rule(page, "tcp", port="443", cidr="203.0.113.0/33")
    assert answer.value.status == 422
    cidr = page.locator("#f-remote_cidr")
    expect(cidr).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-remote_cidr-error")).to_contain_text("not a valid CIDR")
    expect(cidr).to_have_value("203.0.113.0/33")
    shot(page, "partner-security-group-bad-cidr")

    add_rule(page, "udp", port="99999")
    expect(page.locator("#f-port_min-error")).to_contain_text("between 1 and 65535")

    add_rule(page, "tcp", port="443", cidr="203.0.113.0/24")
    expect(page.locator(".flash")).to_contain_text("Rule added")
    row = page.locator("#rule-table tbody tr", has_text="203.0.113.0/24")
    expect(row).to_contain_text("443")
    add_rule(page, "icmp", group="frontend")
    expect(page.locator("#rule-table")).to_contain_text("group frontend")
    shot(page, "partner-security-group")

    create_network(page, "sg-net", prefix="27")
    apply_for_vms(page, "sgvm", 1, "sg-net", security_groups=("frontend",))
    expect(page.locator("#nics tbody tr").first).to_contain_text("frontend")
    page.goto(group_url)
    page.get_by_role("button", name="Delete frontend").click()
    expect(page.locator(".alert")).to_contain_text("is on 1 ports")

    other = new_page()
    sign_in(other, portal.globex)
    response = other.goto(group_url)
    assert response is not None and response.status == 404
    other.goto("/security-groups")
    expect(other.locator("main")).not_to_contain_text("frontend")


def test_operator_reads_the_isolation_report(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.operator)
    page.get_by_role("link", name="Isolation verification").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Isolation verification")
    page.get_by_role("button", name="Run verification").click()
    expect(page.locator(".flash, [role=status]").first).to_contain_text("stored")
    expect(page.locator("#verdict")).to_contain_text("Isolated")
    expect(page.locator("#run-facts")).to_contain_text(portal.operator.username)
    expect(page.locator("#current-badge")).to_have_text("current")
    shot(page, "operator-verify")
    # Reading it again shows the same stored run: the page does not recompute.
    stamp = page.locator("#run-facts time").get_attribute("datetime")
    page.reload()
    expect(page.locator("#run-facts time")).to_have_attribute("datetime", stamp or "")

    partner = new_page()
    sign_in(partner, portal.acme)
    response = partner.goto("/ops/verify")
    assert response is not None and response.status == 403
