"""The per-process sign-in failure budget shared by the API and the portal."""

from __future__ import annotations

import pytest

from fuyun.services.signin_limit import SignInLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_counts_failures_per_account_and_forgets_them_after_the_window() -> None:
    clock = Clock()
    limiter = SignInLimiter(per_account=5, per_address=20, window_s=300, clock=clock)
    for _ in range(5):
        assert limiter.retry_after("alice", "10.0.0.1") is None
        limiter.failed("alice", "10.0.0.1")
        clock.now += 1
    wait = limiter.retry_after("alice", "10.0.0.9")  # another address: the account is limited
    assert wait is not None and 290 < wait <= 300
    assert limiter.retry_after("bob", "10.0.0.1") is None  # the address is under its limit
    clock.now += 300
    assert limiter.retry_after("alice", "10.0.0.1") is None


def test_limiter_counts_per_address_across_accounts_and_success_clears_the_account() -> None:
    clock = Clock()
    limiter = SignInLimiter(per_account=5, per_address=3, window_s=60, clock=clock)
    for name in ("a", "b", "c"):
        limiter.failed(name, "192.0.2.7")
    assert limiter.retry_after("d", "192.0.2.7") is not None
    assert limiter.retry_after("d", "192.0.2.8") is None
    limiter.failed("e", "198.51.100.1")
    limiter.succeeded("e")
    assert "u:e" not in limiter._failures


def test_limiter_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fuyun.services.signin_limit.MAX_KEYS", 10)
    limiter = SignInLimiter(per_account=5, per_address=5, window_s=60, clock=Clock())
    for i in range(50):
        limiter.failed(f"user-{i}", f"addr-{i}")
    assert len(limiter._failures) <= 10
