"""Portal settings read from the environment (``FUYUN_PORTAL_*``), with safe defaults.

They live here rather than in :class:`fuyun.config.Settings` because only the portal
reads them; the session lifetime is the API's ``login_token_ttl_s``, since a portal
session *is* a login token (see :mod:`fuyun.portal.session`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class PortalConfig:
    # Failed sign-ins allowed per account, and per client address, in a sliding window.
    # Per address is looser by default: an office behind one NAT address shares it.
    failures_per_account: int = 5
    failures_per_address: int = 20
    failure_window_s: int = 300
    # Send the session cookie only over HTTPS. "auto" follows the request's scheme.
    secure_cookies: str = "auto"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PortalConfig:
        env = dict(os.environ if env is None else env)

        def number(name: str, default: int) -> int:
            raw = env.get(f"FUYUN_PORTAL_{name}")
            if raw is None:
                return default
            value = int(raw)
            if value < 1:
                raise ValueError(f"FUYUN_PORTAL_{name} must be at least 1")
            return value

        return cls(
            failures_per_account=number("SIGNIN_FAILURES_PER_ACCOUNT", cls.failures_per_account),
            failures_per_address=number("SIGNIN_FAILURES_PER_ADDRESS", cls.failures_per_address),
            failure_window_s=number("SIGNIN_WINDOW_S", cls.failure_window_s),
            secure_cookies=env.get("FUYUN_PORTAL_SECURE_COOKIES", cls.secure_cookies),
        )
