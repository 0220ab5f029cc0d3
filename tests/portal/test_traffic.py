"""The traffic page: charts drawn as inline SVG, per tenant and per VM, scoped per partner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fuyun.portal.charts import bar_chart, rate_chart
from fuyun.store.engine import Database
from fuyun.store.types import utcnow
from fuyun.telemetry.bindings import load_bindings
from fuyun.telemetry.dbstore import DatabaseFlowStore
from fuyun.telemetry.rollup import TrafficRow, bucket_of, to_time
from tests.portal.conftest import Account, expect, seed, shot, sign_in
from tests.support.live import api_servers


def test_charts_are_svg_with_their_numbers_in_words() -> None:
    now = utcnow()
    svg = str(
        rate_chart(
            "Traffic <of> web",
            [now - timedelta(minutes=2 - i) for i in range(3)],
            [("sent", "tx", [1e6, 2e6, 5e5]), ("received", "rx", [0.0, 1e3, 0.0])],
        )
    )
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert "Traffic &lt;of&gt; web" in svg and "<of>" not in svg
    assert "sent: peak 2.0 Mbit/s, last 500.0 kbit/s" in svg
    bars = str(bar_chart("Top", [("a<b", 3e9, 1e9), ("c", 1e6, 0.0)]))
    assert bars.count('class="bar tx"') == 2 and "a&lt;b" in bars and "4.0 Gbit/s" in bars
    assert "no samples" in str(rate_chart("empty", [], [("sent", "tx", [])]))


@pytest.fixture(scope="module")
def traffic_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("traffic-portal") / "fuyun.db"
    url, admin_password = seed(path)
    with api_servers(url, env={"FUYUN_PORTAL_SIGNIN_FAILURES_PER_ADDRESS": "1000"}) as (base,):
        for name in ("acme", "globex"):
            token = httpx.post(
                f"{base}/api/v1/auth/login",
                json={"username": f"{name}-admin", "password": f"{name}-password"},
            ).json()["token"]
            h = {"Authorization": f"Bearer {token}"}
            r = httpx.post(
                f"{base}/api/v1/networks",
                headers=h,
                json={"name": f"{name}-web", "cidr": "10.80.0.0/24"},
            )
            assert r.status_code == 201, r.text
            r = httpx.post(
                f"{base}/api/v1/vms",
                headers=h,
                timeout=60,
                json={
                    "name": f"{name}-app",
                    "flavor": "s1.small",
                    "count": 2,
                    "networks": [f"{name}-web"],
                },
            )
            assert r.status_code in (201, 202), r.text
        db = Database(url)
        rows = []
        now = bucket_of(utcnow().timestamp(), 60)
        for n, b in enumerate(load_bindings(db)[0]):
            for k in range(1, 8):
                rows.append(
                    TrafficRow(
                        10,
                        to_time(now - 60 * k),
                        b.tenant_id,
                        b.vm_id,
                        b.network_id,
                        (n + 1) * 10**7 * k,
                        10**6 * k,
                        1000,
                        100,
                        10,
                    )
                )
        DatabaseFlowStore(db).write(rows, [])
        db.dispose()
        yield {"url": base, "admin": Account("admin", admin_password)}


@pytest.fixture
def page_at(browser: Any, traffic_portal: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=traffic_portal["url"]
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_partner_sees_own_vms_charted_and_nothing_of_others(page_at: Any) -> None:
    sign_in(page_at, Account("acme-admin", "acme-password"))
    page_at.get_by_role("link", name="Traffic").click()
    expect(page_at.get_by_role("heading", level=1)).to_have_text("Traffic")
    chart = page_at.locator("svg.chart").first
    expect(chart.locator("polyline.tx")).to_have_count(1)
    table = page_at.locator("#top-table")
    expect(table).to_contain_text("acme-app-1")
    expect(table).to_contain_text("acme-app-2")
    assert "globex" not in page_at.content()
    shot(page_at, "traffic-partner")
    page_at.goto(f"/traffic?vm={uuid.uuid4()}")
    expect(page_at.locator("main")).to_contain_text("not found")
    page_at.goto("/traffic?vm=globex-app-1")
    expect(page_at.locator("main")).to_contain_text("not found")


def test_operator_sees_who_fills_the_fabric(page_at: Any, traffic_portal: dict[str, Any]) -> None:
    sign_in(page_at, traffic_portal["admin"])
    page_at.goto("/traffic?bucket=1m")
    tenants = page_at.get_by_role("img", name="Top tenants by mean rate over the window")
    expect(tenants).to_be_visible()
    expect(tenants.locator("rect.bar.tx")).to_have_count(2)
    expect(page_at.locator("#top-table")).to_contain_text("globex")
    shot(page_at, "traffic-operator")
    page_at.goto("/traffic?bucket=1m&tenant=globex")
    expect(page_at.locator("#top-table")).not_to_contain_text("acme-app")
    page_at.goto("/traffic?bucket=5m")
    expect(page_at.locator("main")).to_contain_text("bucket")
