"""Failed sign-ins, counted per account and per client address in a sliding window.

One limiter per server process is shared by the API's ``/auth/login`` and the
portal's sign-in form, so neither is a way around the other. Why in memory: a
failed guess must cost the attacker, not the database, and the check runs *before*
the password hash is verified, so a locked-out flood does not burn Argon2 time
either. The price is that each server process counts on its own:
with N processes behind one address an attacker gets at most N times the limit. The
table is bounded (oldest keys are dropped first), so a spray of made-up usernames
cannot grow it without limit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 100_000


class SignInLimiter:
    def __init__(
        self,
        *,
        per_account: int,
        per_address: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.per_account = per_account
        self.per_address = per_address
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.get(key)
        if stamps is None:
            return deque()
        while stamps and stamps[0] <= now - self.window_s:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
        return stamps

    def retry_after(self, account: str, address: str) -> float | None:
        """Seconds until another attempt is allowed, or None when one is allowed now."""
        now = self._clock()
        waits = []
        with self._lock:
            for key, limit in (
                (f"u:{account}", self.per_account),
                (f"a:{address}", self.per_address),
            ):
                stamps = self._recent(key, now)
                if len(stamps) >= limit:
                    waits.append(stamps[len(stamps) - limit] + self.window_s - now)
        return max(waits) if waits else None

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (f"u:{account}", f"a:{address}"):
                stamps = self._failures.setdefault(key, deque())
                self._failures.move_to_end(key)
                stamps.append(now)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        """A right password clears the account's count (not the address's)."""
        with self._lock:
            self._failures.pop(f"u:{account}", None)
