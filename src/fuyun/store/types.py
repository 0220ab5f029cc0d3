"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC when read back.

    SQLite keeps no zone; PostgreSQL keeps ``timestamptz``. Normalising here means
    the API prints the same ISO 8601 string whichever database is underneath.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class EncodedJson(dict[str, Any]):
    """A JSON document together with its text, made already (e.g. to take its digest).

    Assigned to a JSON column, it is stored as that text (see
    :func:`fuyun.store.engine.json_text`), so a large document — a ToR's desired state
    is hundreds of kilobytes — is not encoded a second time on the request path. The
    text must be the encoding of the contents, so the document is not changed after.
    """

    def __init__(self, data: dict[str, Any], text: str) -> None:
        super().__init__(data)
        self.text = text

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy may be changed: it is a plain document, encoded when stored.
        return dict, (dict(self),)
