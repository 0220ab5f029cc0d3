"""The operator console in a real browser: overview, fabric map, a host into maintenance."""

from __future__ import annotations

from typing import Any

from tests.portal.conftest import PHONE, Portal, expect, shot, sign_in


def test_operator_sees_the_fabric_and_puts_a_host_into_maintenance(
    new_page: Any, portal: Portal
) -> None:
    page = new_page()
    sign_in(page, portal.operator)
    expect(page.get_by_role("heading", level=1)).to_have_text("Operator overview")
    shot(page, "operator-overview")

    # An operator applies for a VM on a partner's behalf (the form asks for the tenant).
    page.goto("/vms/new")
    page.get_by_label("Tenant").select_option(label="Globex Ltd")
    page.get_by_role("textbox", name="Name", exact=True).fill("ops-made")
    page.get_by_label("How many").fill("1")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash")).to_contain_text("Created 1 VM: ops-made")
    host_link = page.locator("dt:has-text('Host') + dd a")
    host_name = host_link.inner_text()
    host_href = str(host_link.get_attribute("href"))

    page.goto("/ops/fabric")
    expect(page.get_by_role("heading", level=1)).to_have_text("Fabric map")
    expect(page.locator(".site h2")).to_have_count(2)
    cells = page.locator(".heatgrid a.cell")
    assert cells.count() >= 4
    label = str(cells.first.get_attribute("aria-label"))
    assert "CPU" in label and "hosts" in label
    cells.first.focus()
    page.keyboard.press("ArrowRight")
    expect(cells.nth(1)).to_be_focused()
    shot(page, "operator-fabric")
    page.get_by_role("link", name="MAC table").click()
    expect(page.locator(".metrics a[aria-current=true]")).to_have_text("MAC table")
    shot(page, "operator-fabric-mac")

    host_link_module = page.locator(".module h3 a").first
    host_link_module.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Module")
    expect(page.locator(".heatrow").first).to_be_visible()
    shot(page, "operator-module")

    page.goto("/vms?q=ops-made")
    page.get_by_role("link", name=host_name).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Host {host_name}")
    assert page.title() == f"Host {host_name} · fuyun"
    expect(page.locator("#host-vms")).to_contain_text("ops-made")
    expect(page.locator("#host-agent")).to_contain_text("fuyun host agent-credential")
    # The hypervisor runs what the store says: the drift card says so.
    expect(page.locator("#drift")).to_contain_text("fake")
    expect(page.locator("#no-drift")).to_be_visible()
    page.get_by_role("button", name="Put into maintenance").click()
    expect(page.locator(".flash")).to_contain_text(
        f"{host_name} is now in maintenance. 1 VM still runs on it."
    )
    expect(page.locator("h1 .state")).to_have_text("maintenance")
    shot(page, "operator-host-maintenance")

    page.get_by_role("link", name="Evacuation plan…").click()
    expect(page.locator("#evacuate-vms")).to_contain_text("ops-made")
    row = page.locator("#evacuate-vms tr", has_text="ops-made")
    expect(row).not_to_contain_text("no host")
    shot(page, "operator-evacuate")
    page.get_by_role("button", name="Start evacuation").click()
    expect(page.locator(".flash")).to_contain_text(f"Evacuating {host_name}.")
    expect(page.locator("h1 .state")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#batch-text")).to_contain_text("1 moved, 0 failed")
    expect(page.locator("#batch-vms")).to_contain_text("ops-made")
    shot(page, "operator-evacuation-progress")

    # The migrations page plans a single move and shows the history.
    page.get_by_role("link", name="Migrations").first.click()
    expect(page.locator("#batches")).to_contain_text("evacuate-host")
    page.get_by_label("VM (name or id)").fill("ops-made")
    page.get_by_role("button", name="Plan").click()
    expect(page.locator("#plan-answer")).to_contain_text("ops-made")
    shot(page, "operator-migration-plan")
    page.get_by_label("VM (name or id)").fill("no-such-vm")
    page.get_by_role("button", name="Plan").click()
    expect(page.locator("#f-vm-error")).to_contain_text("no VM named")

    # The module map now hatches the host, and the scheduler no longer places there.
    page.goto("/vms/new")
    page.get_by_label("Tenant").select_option(label="Globex Ltd")
    page.get_by_role("textbox", name="Name", exact=True).fill("after-maint")
    page.get_by_label("How many").fill("1")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash")).to_contain_text("Created 1 VM")
    assert page.locator("dt:has-text('Host') + dd a").inner_text() != host_name

    # ops-made moved away; the emptied host returns to service from its own page.
    page.goto(host_href)
    expect(page.locator("#host-vms")).not_to_contain_text("ops-made")
    page.get_by_role("button", name="Return to service").click()
    expect(page.locator("h1 .state")).to_have_text("active")

    for url, name in (
        ("/ops/tenants", "operator-tenants"),
        ("/workflows", "operator-workflows"),
        ("/audit", "operator-audit"),
        ("/networks", "operator-networks"),
    ):
        assert page.goto(url).status == 200  # type: ignore[union-attr]
        shot(page, name)
    expect(page.locator("body")).not_to_contain_text("Traceback")


def test_operator_changes_a_quota_with_errors_in_place(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.operator)
    page.goto("/ops/tenants")
    page.get_by_role("link", name="Globex Ltd").click()
    page.get_by_label("VMs", exact=True).fill("-1")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator("#f-vms-error")).to_contain_text("at least 0")
    page.get_by_label("VMs", exact=True).fill("40")
    page.get_by_role("button", name="Save limits").click()
    expect(page.locator(".flash")).to_contain_text("Quota limits saved")
    expect(page.get_by_label("VMs", exact=True)).to_have_value("40")
    shot(page, "operator-tenant")


def test_pages_work_at_phone_width(new_page: Any, portal: Portal) -> None:
    page = new_page(viewport=PHONE)
    sign_in(page, portal.acme)
    for url, name in (("/", "phone-dashboard"), ("/vms/new", "phone-vm-new")):
        page.goto(url)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{url} scrolls sideways by {overflow}px"
        shot(page, name)
    ops = new_page(viewport=PHONE)
    sign_in(ops, portal.operator)
    ops.goto("/ops/fabric")
    assert ops.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    shot(ops, "phone-fabric")


UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, meter, progress'))
  .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                 || (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML.slice(0, 80))"""


def test_pages_are_labelled_and_keyboard_reachable(new_page: Any, portal: Portal) -> None:
    for account, urls in (
        (portal.acme, ["/", "/vms", "/vms/new", "/networks", "/groups", "/account/tokens"]),
        (portal.operator, ["/", "/ops/fabric", "/ops/tenants", "/account/users", "/audit"]),
    ):
        page = new_page()
        sign_in(page, account)
        for url in urls:
            page.goto(url)
            assert page.evaluate(UNLABELLED) == [], url
            for landmark in ("banner", "navigation", "main", "contentinfo"):
                assert page.get_by_role(landmark).count() >= 1, (url, landmark)
            assert page.get_by_role("heading", level=1).count() == 1, url
        page.goto("/")
        page.keyboard.press("Tab")
        expect(page.locator(":focus")).to_have_text("Skip to content")
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
