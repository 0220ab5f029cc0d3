"""The capacity plan page in a real browser: a plan with charts, a what-if, partners refused."""

from __future__ import annotations

from typing import Any

from tests.portal.conftest import PHONE, Portal, expect, shot, sign_in
from tests.portal.test_operator import UNLABELLED


def test_operator_runs_a_plan_and_reads_the_charts(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.operator)
    page.get_by_role("link", name="Capacity plan").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Capacity plan")
    assert page.evaluate(UNLABELLED) == []
    page.get_by_label("Scenario", exact=True).select_option("viral-app")
    page.get_by_role("spinbutton", name="Steps").fill("4")
    page.get_by_label("N+1 checks (any one host, ToR or site lost)").check()
    page.get_by_role("button", name="Run plan").click()
    expect(page.locator("#result-title")).to_contain_text("live under viral-app")
    charts = page.locator("figure.chartbox svg.chart")
    expect(charts).to_have_count(3)  # compute, network, remedies
    assert charts.first.get_attribute("role") == "img"
    expect(page.locator("svg.chart polyline.series")).to_have_count(9)
    expect(page.locator("#plan-timeline tbody tr")).to_have_count(4)
    expect(page.locator("#plan-remedies tbody tr").first).to_be_visible()
    expect(page.locator("#plan-strategies tbody tr")).to_have_count(3)
    expect(page.locator("#n1-title")).to_contain_text("N+1")
    # The run is stored: the page shows it with what was asked, and reading the page
    # again shows the same run instead of planning again.
    expect(page.locator(".flash")).to_contain_text("stored")
    expect(page.get_by_role("spinbutton", name="Steps")).to_have_value("4")
    expect(page.locator("#run-params")).to_contain_text("scenario viral-app")
    expect(page.locator("#run-facts")).to_contain_text(portal.operator.username)
    expect(page.locator("#current-badge")).to_be_visible()
    stamp = page.locator("#run-facts time").get_attribute("datetime")
    page.goto("/ops/plan")
    expect(page.locator("#run-facts time")).to_have_attribute("datetime", stamp or "")
    expect(page.locator("#result-title")).to_contain_text("live under viral-app")
    # Query parameters fill the form in (bookmarkable inputs) and plan nothing.
    page.goto("/ops/plan?fabric=small&steps=7")
    expect(page.get_by_role("spinbutton", name="Steps")).to_have_value("7")
    expect(page.locator("#run-facts time")).to_have_attribute("datetime", stamp or "")
    page.goto("/ops/plan")
    shot(page, "operator-plan")

    page.get_by_label("Fabric", exact=True).select_option("small")
    page.get_by_label("Compare with", exact=True).select_option("switched")
    page.get_by_role("button", name="Run plan").click()
    expect(page.locator("#compare-title")).to_contain_text("small with switched-clos (TRILL)")
    expect(page.locator(".sidebyside svg.chart")).to_have_count(4)
    expect(page.locator("#plan-compare tbody tr").first).to_contain_text("VMs placed")
    shot(page, "operator-plan-compare")

    page.get_by_role("spinbutton", name="Steps").fill("0")
    page.get_by_role("button", name="Run plan").click()
    expect(page.locator("#f-steps-error")).to_contain_text("between 1 and 48")


def test_plan_page_fits_a_phone_and_is_for_operators(new_page: Any, portal: Portal) -> None:
    page = new_page(viewport=PHONE)
    sign_in(page, portal.operator)
    page.goto("/ops/plan?fabric=small&scenario=steady&steps=3")
    page.get_by_role("button", name="Run plan").click()
    expect(page.locator("figure.chartbox svg.chart").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    shot(page, "phone-plan")
    partner = new_page()
    sign_in(partner, portal.acme)
    response = partner.goto("/ops/plan")
    assert response is not None and response.status == 403
