"""A partner's self-service in a real browser, and another partner who sees none of it."""

from __future__ import annotations

import re
import time
from typing import Any

from tests.portal.conftest import Portal, csrf_of, expect, shot, sign_in


def quota_line(page: Any, label: str) -> str:
    row = page.locator("#quota .usage-label", has=page.get_by_text(label, exact=True))
    return str(row.locator("span").nth(1).inner_text())


def create_network(page: Any, name: str, cidr: str = "", prefix: str = "") -> None:
    page.goto("/networks")
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    if cidr:
        page.get_by_label("CIDR").fill(cidr)
    if prefix:
        page.get_by_label("Prefix length").fill(prefix)
    page.get_by_label("When the subnet fills").select_option("secondary")
    page.get_by_role("button", name="Create network").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Network {name}")


def apply_for_vms(
    page: Any,
    name: str,
    count: int,
    network: str,
    group: str | None = None,
    security_groups: tuple[str, ...] = (),
) -> None:
    page.goto("/vms/new")
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_label("Flavor").select_option("s1.small")
    page.get_by_label("How many").fill(str(count))
    page.get_by_role("checkbox", name=network, exact=True).check()
    for security_group in security_groups:
        page.get_by_role("checkbox", name=security_group, exact=True).check()
    if group:
        page.get_by_label("Server group").select_option(label=group)
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash")).to_contain_text(f"Created {count} VM")


def test_partner_applies_adjusts_and_returns_vms(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.acme)
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")
    assert quota_line(page, "VMs").startswith("0 of 50")
    assert quota_line(page, "vCPUs").startswith("0 of 200")
    shot(page, "partner-dashboard-empty")

    create_network(page, "web", cidr="10.20.0.0/24")
    expect(page.locator("main")).to_contain_text("10.20.0.0/24")
    shot(page, "partner-network")

    page.goto("/groups")
    page.get_by_role("textbox", name="Name", exact=True).fill("ha")
    page.get_by_label("Policy").select_option("anti-affinity")
    page.get_by_label("Level").select_option("host")
    page.get_by_role("button", name="Create group").click()
    expect(page.locator("#group-table")).to_contain_text("anti-affinity")
    shot(page, "partner-groups")

    apply_for_vms(page, "app", 3, "web", group="ha — anti-affinity per host")
    rows = page.locator("#vm-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#vm-table")).to_contain_text("app-3")
    shot(page, "partner-vms")

    page.get_by_role("link", name="app-1", exact=True).click()
    expect(page.locator("#nics")).to_contain_text("web")
    expect(page.locator("#nics")).to_contain_text(re.compile(r"10\.20\.0\.\d+"))
    assert page.locator("dt", has_text="Host").count() == 0  # host-independent view
    page.get_by_label("Resize to").select_option("s1.medium")
    page.get_by_role("button", name="Resize").click()
    expect(page.locator(".flash")).to_contain_text("app-1 resized to s1.medium")
    expect(page.locator("#vm-flavor")).to_have_text("s1.medium")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator(".flash")).to_contain_text("app-1 stopped")
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".flash")).to_contain_text("app-1 started")
    shot(page, "partner-vm-detail")

    page.goto("/vms?q=app-3")
    page.get_by_role("link", name="app-3", exact=True).click()
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete VM app-3?")
    shot(page, "partner-vm-delete-confirm")
    page.get_by_role("button", name="Delete app-3").click()
    expect(page.locator(".flash")).to_contain_text("app-3 deleted")
    expect(page.locator("#vm-table tbody tr")).to_have_count(2)

    page.goto("/")
    assert quota_line(page, "VMs").startswith("2 of 50")
    assert quota_line(page, "vCPUs").startswith("3 of 200")  # s1.medium (2) + s1.small (1)
    assert quota_line(page, "IP addresses").startswith("2 of 250")
    shot(page, "partner-dashboard")

    page.goto("/workflows")
    expect(page.locator("main table")).to_contain_text("vm.resize")
    shot(page, "partner-workflows")
    page.goto("/audit")
    expect(page.locator("main table")).to_contain_text("vm.delete")
    shot(page, "partner-audit")


def test_another_partner_cannot_see_or_touch_any_of_it(new_page: Any, portal: Portal) -> None:
    a = new_page()
    sign_in(a, portal.acme)
    create_network(a, "secret-net", prefix="26")
    network_url = a.url
    apply_for_vms(a, "secret", 1, "secret-net")
    vm_url = a.url
    a.goto("/workflows?kind=vm.create")
    workflow_url = a.locator("main table tbody a").first.get_attribute("href")
    assert workflow_url and workflow_url.startswith("/workflows/")

    b = new_page()
    sign_in(b, portal.globex)
    guesses = [
        vm_url,
        vm_url + "/delete",
        network_url,
        network_url + "/delete",
        workflow_url,
        f"/ui{workflow_url}.json",
        "/vms/not-a-uuid",
    ]
    for url in guesses:
        response = b.goto(url)
        assert response is not None and response.status == 404, url
        expect(b.get_by_role("heading", level=1)).to_have_text("Not found")
    for url in ("/", "/vms", "/networks", "/groups", "/audit", "/workflows", "/account/tokens"):
        b.goto(url)
        expect(b.locator("main")).not_to_contain_text("secret")
        expect(b.locator("main")).not_to_contain_text("acme")
    # A forged delete with globex's own valid CSRF token is a 404 too, and changes nothing.
    forged = b.request.post(vm_url + "/delete", form={"csrf": csrf_of(b)})
    assert forged.status == 404
    assert a.goto(vm_url).status == 200  # type: ignore[union-attr]
    assert b.goto("/ops/fabric").status == 403  # type: ignore[union-attr]


def test_bad_cidr_is_shown_next_to_the_field(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.acme)
    create_network(page, "taken", cidr="10.30.0.0/24")
    page.goto("/networks")
    page.get_by_role("textbox", name="Name", exact=True).fill("bad")
    page.get_by_label("CIDR").fill("10.0.0.300/24")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create network").click()
    assert answer.value.status == 422
    cidr = page.locator("#f-cidr")
    expect(cidr).to_have_attribute("aria-invalid", "true")
    expect(cidr).to_be_focused()
    expect(cidr).to_have_value("10.0.0.300/24")
    field = page.locator(".field", has=cidr)
    expect(field.locator(".error")).to_contain_text("not a valid CIDR")
    assert "f-cidr-error" in str(cidr.get_attribute("aria-describedby"))
    expect(page.get_by_role("textbox", name="Name", exact=True)).to_have_value("bad")
    expect(page.locator("[aria-invalid=true]")).to_have_count(1)
    shot(page, "partner-network-bad-cidr")

    # An overlapping range is refused at the same field, with the clash named.
    page.get_by_label("CIDR").fill("10.30.0.0/25")
    page.get_by_role("textbox", name="Name", exact=True).fill("clash")
    page.get_by_role("button", name="Create network").click()
    expect(page.locator("#f-cidr-error")).to_contain_text("overlaps 10.30.0.0/24")


WATCH_PROGRESS = """() => {
  const slot = document.querySelector('form[data-progress] .progress-slot');
  new MutationObserver(() => {
    const bar = slot.querySelector('progress');
    const seen = JSON.parse(sessionStorage.getItem('progress') || '[]');
    seen.push({text: slot.textContent.trim(), bar: bar ? [bar.value, bar.max] : null});
    sessionStorage.setItem('progress', JSON.stringify(seen));
  }).observe(slot, {childList: true, subtree: true, characterData: true, attributes: true});
}"""


def test_a_long_action_shows_its_workflow_progress(new_page: Any, portal: Portal) -> None:
    """While the POST is outstanding the form draws the workflow's steps from the JSON feed.

    The answer is held back for a second (as a slow network would), so the check does
    not depend on how fast the fake driver is.
    """
    page = new_page()
    sign_in(page, portal.bulk)
    page.goto("/vms/new")
    page.get_by_role("textbox", name="Name", exact=True).fill("batch")
    page.get_by_label("How many").fill("30")
    page.evaluate(WATCH_PROGRESS)

    def slow_answer(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        time.sleep(1.5)
        route.fulfill(response=answer)

    page.route("**/vms", slow_answer)
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash")).to_contain_text("Created 30 VMs")
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('progress') || '[]')")
    assert seen and seen[0]["text"] == "Working…", seen
    bars = [s["bar"] for s in seen if s["bar"]]
    assert bars and all(max_ == 3 for _, max_ in bars), seen  # place, boot, activate
    assert bars[-1] == [3, 3], seen
    assert "succeeded" in seen[-1]["text"], seen
    feed = page.request.get("/ui/workflows.json?kind=vm.create&subject=batch").json()
    assert feed["items"][0]["state"] == "succeeded"
    assert feed["items"][0]["done"] == feed["items"][0]["total"] == 3


def test_a_quota_refusal_is_shown_at_the_count(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.globex)
    page.goto("/vms/new")
    page.get_by_role("textbox", name="Name", exact=True).fill("too-many")
    page.get_by_label("How many").fill("11")  # 11 x 100 Mbit/s > the 1,000 Mbit/s quota
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create").click()
    assert answer.value.status == 409
    expect(page.locator("#f-count-error")).to_contain_text("quota exceeded for bandwidth_mbps")
    expect(page.get_by_label("How many")).to_be_focused()
    expect(page.get_by_role("textbox", name="Name", exact=True)).to_have_value("too-many")
    shot(page, "partner-vm-new-quota-error")
