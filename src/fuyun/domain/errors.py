"""Errors every layer speaks.

Each error carries a machine-readable ``code``, a human ``message`` and, where one
input is at fault, the ``field``. The API turns them into
``{"error": {"code", "message", "field"}}`` with the HTTP status given here, and
the CLI into a message and exit code 2, so no edge has to invent its own wording.
"""

from __future__ import annotations


class FuyunError(Exception):
    """Base of every error fuyun raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidInput(FuyunError):
    """The request is malformed or violates a rule about a single field."""

    status = 422
    code = "invalid"


class Unauthenticated(FuyunError):
    """No credential, or a credential that is unknown, expired or revoked."""

    status = 401
    code = "unauthenticated"


class Forbidden(FuyunError):
    """The caller is known but its role may not do this.

    Never raised for another tenant's object: those answer :class:`NotFound` so that
    their existence does not leak.
    """

    status = 403
    code = "forbidden"


class NotFound(FuyunError):
    status = 404
    code = "not_found"


class Conflict(FuyunError):
    """The request is well formed but clashes with the current state."""

    status = 409
    code = "conflict"


class QuotaExceeded(Conflict):
    code = "quota_exceeded"


class CapacityExhausted(Conflict):
    """A host, switch table or pool has no room left for the request."""

    code = "capacity_exhausted"


class TooManyAttempts(FuyunError):
    """Too many failed sign-ins for the account or from the address; retry later."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DriverError(FuyunError):
    """A driver failed to converge a device; the operation was rolled back."""

    status = 502
    code = "driver_error"
