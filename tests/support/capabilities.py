"""Skipping for missing real components, except where every capability is required.

Locally, a test that needs PostgreSQL, root, namespaces or Chromium skips with a
reason when the part is missing. With ``FUYUN_REQUIRE_ALL=1`` (set by
``.ci/run``) the same absence fails the test instead: CI never skips silently.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def require_all() -> bool:
    return os.environ.get("FUYUN_REQUIRE_ALL") == "1"


def missing(capability: str, reason: str) -> NoReturn:
    message = f"{capability} unavailable: {reason}"
    if require_all():
        pytest.fail(f"{message} (FUYUN_REQUIRE_ALL=1 makes this a failure)", pytrace=False)
    pytest.skip(message)
