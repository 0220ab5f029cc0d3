"""A real ``fuyun`` server on 127.0.0.1 and Debian's Chromium driven by Playwright.

The store is bootstrapped here (``small`` fabric, operator ``admin``) with two partner
tenants, each with an admin who has a password; then ``uvicorn`` serves it from a
separate process, as ``fuyun serve`` would. Chromium is Debian's ``/usr/bin/chromium``
(never ``playwright install``): without it the browser tests skip, or fail under
``FUYUN_REQUIRE_ALL=1``.

Screenshots of every main page go to ``test-artifacts/portal/`` (see docs/portal.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fuyun.config import Settings
from fuyun.domain.enums import Role
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import identity, tenants
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from tests.support.capabilities import missing
from tests.support.live import api_servers

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Account:
    username: str
    password: str


@dataclass(frozen=True)
class Portal:
    url: str
    operator: Account
    acme: Account
    globex: Account
    victim: Account  # for the rate-limit test, so no other sign-in is locked out
    bulk: Account  # a partner with room for many VMs at once
    studio: Account  # a partner buying guaranteed bandwidth (QoS pages)


def seed(path: Path) -> tuple[str, str]:
    """A bootstrapped store with two partners; answers (database URL, admin password)."""
    db = Database(f"sqlite:///{path}")
    settings = Settings(database_url=db.url)
    result = bootstrap(db, settings, FakeComputeDriver(), fabric="small")
    assert result.admin_password
    for name in ("acme", "globex"):
        tenant = tenants.create_tenant(db, SYSTEM, name=name, display_name=name.title() + " Ltd")
        identity.create_user(
            db,
            SYSTEM,
            username=f"{name}-admin",
            role=Role.TENANT_ADMIN,
            tenant_id=tenant.id,
            password=f"{name}-password",
        )
        if name == "acme":
            identity.create_user(
                db,
                SYSTEM,
                username="acme-victim",
                role=Role.TENANT_MEMBER,
                tenant_id=tenant.id,
                password="victim-password",
            )
    big = {"vms": 500, "vcpus": 2000, "ram_mb": 1 << 22, "ips": 5000, "bandwidth_mbps": 10**6}
    bulk = tenants.create_tenant(db, SYSTEM, name="bulk", display_name="Bulk", limits=big)
    identity.create_user(
        db,
        SYSTEM,
        username="bulk-admin",
        role=Role.TENANT_ADMIN,
        tenant_id=bulk.id,
        password="bulk-password",
    )
    studio = tenants.create_tenant(db, SYSTEM, name="studio", display_name="Studio", limits=big)
    identity.create_user(
        db,
        SYSTEM,
        username="studio-admin",
        role=Role.TENANT_ADMIN,
        tenant_id=studio.id,
        password="studio-password",
    )
    db.dispose()
    return f"sqlite:///{path}", result.admin_password


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    url, admin_password = seed(tmp_path_factory.mktemp("portal") / "fuyun.db")
    # Sign-ins from 127.0.0.1 are all one address here: only the rate-limit test's own
    # server keeps the per-address limit low.
    env = {"FUYUN_PORTAL_SIGNIN_FAILURES_PER_ADDRESS": "1000"}
    with api_servers(url, env=env) as (base,):
        yield Portal(
            url=base,
            operator=Account("admin", admin_password),
            acme=Account("acme-admin", "acme-password"),
            globex=Account("globex-admin", "globex-password"),
            victim=Account("acme-victim", "victim-password"),
            bulk=Account("bulk-admin", "bulk-password"),
            studio=Account("studio-admin", "studio-password"),
        )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        missing("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        missing("Chromium", f"the playwright package is not installed: {exc}")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, portal: Portal) -> Iterator[Any]:
    """Open pages in fresh browser contexts (own cookies): ``new_page(viewport=PHONE)``."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] = DESKTOP) -> Any:
        context = browser.new_context(viewport=viewport, base_url=portal.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, account: Account) -> None:
    page.goto("/signin")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/signin" not in url)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def expect(target: Any) -> Any:
    """Playwright's ``expect``, imported late so a missing package skips instead of erroring."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def csrf_of(page: Any) -> str:
    return str(page.locator("input[name=csrf]").first.get_attribute("value"))
