"""Password hashing with Argon2id, the current OWASP recommendation.

``FUYUN_ARGON2_PROFILE=fast`` lowers the cost for test suites only: a hash keeps
its parameters, so verification works whatever profile made it.
"""

from __future__ import annotations

import os

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

_PROFILES = {
    "default": profiles.RFC_9106_LOW_MEMORY,
    "fast": profiles.CHEAPEST,
}
_hasher = PasswordHasher.from_parameters(
    _PROFILES.get(os.environ.get("FUYUN_ARGON2_PROFILE", "default"), profiles.RFC_9106_LOW_MEMORY)
)
# Verified against when a user is unknown, so a sign-in takes as long either way.
_DUMMY_HASH = _hasher.hash("fuyun-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
