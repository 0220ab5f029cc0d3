"""A host's page shows its switch documents: desired vs applied generation and drift."""

from __future__ import annotations

import re
from typing import Any

from tests.portal.conftest import Portal, expect, shot, sign_in


def test_host_page_shows_the_switch_documents(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.operator)
    page.goto("/vms/new")
    page.get_by_label("Tenant").select_option(label="Bulk")
    page.get_by_role("textbox", name="Name", exact=True).fill("doc-shown")
    page.get_by_label("How many").fill("1")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash")).to_contain_text("Created 1 VM: doc-shown")
    vm_url = page.url
    page.locator("dt:has-text('Host') + dd a").click()
    table = page.locator("#host-devices")
    ports = table.locator("tr").filter(has=page.locator("td", has_text=re.compile(r"^ports$")))
    expect(ports).to_have_count(1)
    expect(ports.locator("td").nth(2)).to_have_text(re.compile(r"^[1-9]\d*$"))  # desired
    shot(page, "operator-host-switch-state")
    # Leave the shared portal as it was: other tests count VMs per host and tenant.
    page.goto(vm_url)
    page.get_by_role("link", name="Delete…").click()
    page.get_by_role("button", name="Delete doc-shown").click()
    expect(page.locator(".flash")).to_contain_text("doc-shown deleted")
