"""QoS policies in a real browser: errors next to the field, admission refusals at the policy."""

from __future__ import annotations

from typing import Any

from tests.portal.conftest import Portal, expect, shot, sign_in
from tests.portal.test_partner import apply_for_vms, create_network


def _create(page: Any, name: str, guarantee: str, ceiling: str) -> Any:
    page.goto("/qos")
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_label("Guarantee (Mbit/s)").fill(guarantee)
    page.get_by_label("Ceiling (Mbit/s)").fill(ceiling)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create policy").click()
    return answer.value


def test_partner_defines_and_applies_guarantees(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.studio)
    create_network(page, "qnet", cidr="10.40.0.0/24")
    apply_for_vms(page, "q", 1, "qnet")

    answer = _create(page, "bad", "500", "100")
    assert answer.status == 422
    guarantee = page.locator("#f-guarantee_mbps")
    expect(guarantee).to_have_attribute("aria-invalid", "true")
    expect(guarantee).to_have_value("500")
    field = page.locator(".field", has=guarantee)
    expect(field.locator(".error")).to_contain_text("exceeds ceiling_mbps 100")
    expect(page.locator("[aria-invalid=true]")).to_have_count(1)
    shot(page, "partner-qos-bad-guarantee")

    assert _create(page, "gold", "100", "500").status in (200, 303)
    expect(page.locator("#qos-table")).to_contain_text("gold")
    assert _create(page, "huge", "20000", "20000").status in (200, 303)

    # A VM applied for with a policy gets it on its NIC.
    page.goto("/vms/new")
    page.get_by_role("textbox", name="Name", exact=True).fill("shaped")
    page.get_by_label("Flavor").select_option("s1.small")
    page.get_by_role("checkbox", name="qnet", exact=True).check()
    page.get_by_label("QoS policy").select_option(label="gold: 100/500 Mbit/s")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash")).to_contain_text("Created 1 VM")
    page.goto("/qos")
    page.get_by_label("VM", exact=True).select_option(label="shaped")
    page.get_by_label("Port policy").select_option("huge")
    page.get_by_role("button", name="Apply policy").click()
    expect(page.locator("#f-qos_policy-error")).to_contain_text("host uplink")

    # Too much for the host's uplink: refused next to the policy, naming the link.
    page.get_by_label("VM", exact=True).select_option(label="q")
    page.get_by_label("Port policy").select_option("huge")
    with page.expect_response(lambda r: r.request.method == "POST") as refused:
        page.get_by_role("button", name="Apply policy").click()
    assert refused.value.status == 409
    policy = page.locator("#f-qos_policy")
    expect(policy).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field", has=policy).locator(".error")).to_contain_text("host uplink")
    shot(page, "partner-qos-refused")

    page.get_by_label("VM", exact=True).select_option(label="q")
    page.get_by_label("Port policy").select_option("gold")
    page.get_by_role("button", name="Apply policy").click()
    expect(page.locator(".flash")).to_contain_text("1 NIC(s) now have gold")
    shot(page, "partner-qos")


def test_another_partner_sees_no_policy(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.globex)
    page.goto("/qos")
    expect(page.locator("#qos-table")).not_to_contain_text("gold")
