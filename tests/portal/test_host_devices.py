"""A host's page shows its switch documents: desired vs applied generation and drift."""

from __future__ import annotations

import re
from typing import Any

from tests.portal.conftest import Portal, expect, shot, sign_in


def test_host_page_shows_the_switch_documents(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.operator)
    page.goto("/vms/new")
    page.get_by_label("Tenant").select_option(label="Acme Ltd")
    page.get_by_role("textbox", name="Name", exact=True).fill("doc-shown")
    page.get_by_label("How many").fill("1")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash")).to_contain_text("Created 1 VM: doc-shown")
    page.locator("dt:has-text('Host') + dd a").click()
    table = page.locator("#host-devices")
    expect(table.locator("td").filter(has_text=re.compile(r"^ports$"))).to_have_count(1)
    expect(table.locator("td").filter(has_text=re.compile(r"^vswitch$"))).to_have_count(1)
    shot(page, "operator-host-switch-state")
