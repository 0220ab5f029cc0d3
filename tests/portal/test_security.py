"""Sign-in throttling, CSRF, and sessions that really end on sign-out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.portal.conftest import Portal, csrf_of, expect, seed, shot, sign_in
from tests.support.live import api_servers


def attempt(page: Any, username: str, password: str) -> int:
    page.goto("/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    return int(answer.value.status)


def test_failed_signins_are_rate_limited_per_account(new_page: Any, portal: Portal) -> None:
    page = new_page()
    for _ in range(5):
        assert attempt(page, portal.victim.username, "wrong-password") == 401
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    assert attempt(page, portal.victim.username, "wrong-password") == 429
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    shot(page, "signin-rate-limited")
    # Even the right password waits: the limit is checked before the password.
    assert attempt(page, portal.victim.username, portal.victim.password) == 429
    # Other accounts from the same address are not locked out by it.
    assert attempt(page, portal.acme.username, portal.acme.password) == 303


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[str]:
    """A server of its own whose per-address limit is 3 failures."""
    url, _ = seed(tmp_path / "strict.db")
    env = {"FUYUN_PORTAL_SIGNIN_FAILURES_PER_ADDRESS": "3"}
    with api_servers(url, env=env) as (base,):
        yield base


def _signin_post(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/signin")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    return client.post(
        "/signin", data={"username": username, "password": password, "csrf": token.group(1)}
    )


def test_failed_signins_are_rate_limited_per_address(strict_server: str) -> None:
    with httpx.Client(base_url=strict_server) as client:
        for name in ("nobody-1", "nobody-2", "nobody-3"):
            assert _signin_post(client, name, "whatever-1").status_code == 401
        limited = _signin_post(client, "acme-admin", "acme-password")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert "Too many failed sign-ins" in limited.text


def test_api_logins_and_the_signin_form_share_one_budget(strict_server: str) -> None:
    """Guessing through /api/v1/auth/login is no way around the form's limit."""
    with httpx.Client(base_url=strict_server) as client:
        for name in ("nobody-1", "nobody-2", "nobody-3"):
            wrong = {"username": name, "password": "whatever-1"}
            assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
        assert _signin_post(client, "acme-admin", "acme-password").status_code == 429
        right = {"username": "acme-admin", "password": "acme-password"}
        api = client.post("/api/v1/auth/login", json=right)
        assert api.status_code == 429 and api.json()["error"]["code"] == "too_many_attempts"


def test_posts_without_the_csrf_token_are_refused(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.acme)
    page.goto("/networks")
    token = csrf_of(page)
    for form, headers in (
        ({"name": "no-token"}, {}),
        ({"name": "bad-token", "csrf": "0" * 64}, {}),
        ({"name": "cross-site", "csrf": token}, {"Origin": "http://evil.example"}),
    ):
        refused = page.request.post("/networks", form=form, headers=headers)
        assert refused.status == 403, form
        assert "Form refused" in refused.text()
    accepted = page.request.post(
        "/networks", form={"name": "with-token", "csrf": token, "growth": "secondary"}
    )
    assert accepted.ok
    page.goto("/networks")
    expect(page.locator("#network-table")).to_contain_text("with-token")
    for name in ("no-token", "bad-token", "cross-site"):
        expect(page.locator("#network-table")).not_to_contain_text(name)
    # The sign-in form has its own (pre-session) token.
    with httpx.Client(base_url=portal.url) as client:
        bare = client.post("/signin", data={"username": "acme-admin", "password": "x" * 9})
        assert bare.status_code == 403


def test_sign_out_revokes_the_session(new_page: Any, portal: Portal) -> None:
    page = new_page()
    sign_in(page, portal.acme)
    cookie = next(c for c in page.context.cookies() if c["name"] == "fuyun_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash")).to_contain_text("signed out")
    with httpx.Client(base_url=portal.url, cookies={"fuyun_session": cookie["value"]}) as client:
        stale = client.get("/vms")
        assert stale.status_code == 303 and stale.headers["location"].startswith("/signin")
        secret = cookie["value"].split(".", 1)[1]
        api = client.get("/api/v1/vms", headers={"Authorization": f"Bearer {secret}"})
        assert api.status_code == 401
