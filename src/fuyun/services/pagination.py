"""Cursor (keyset) pagination: stable under inserts and O(page) at any depth.

A cursor encodes the last row's sort key and id; the next page starts strictly
after it. Offsets are never used, so page 1,000 of 100,000 hosts costs what
page 1 costs.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from fuyun.domain.errors import InvalidInput

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _encode(key: Any, row_id: uuid.UUID) -> str:
    if isinstance(key, datetime):
        key = {"t": key.isoformat()}
    raw = json.dumps([key, str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, row_id = json.loads(raw)
        if isinstance(key, dict):
            key = datetime.fromisoformat(key["t"])
        return key, uuid.UUID(row_id)
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not one this server issued", field="cursor") from exc


def paginate(
    session: Session,
    stmt: Select[tuple[T]],
    *,
    sort: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    limit: int | None,
    cursor: str | None,
    descending: bool = False,
) -> Page[T]:
    """Run ``stmt`` one page at a time, ordered by ``(sort, id)``."""
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if cursor:
        key, last_id = _decode(cursor)
        # A row-value comparison, so both databases seek the (sort, id) index instead of
        # scanning it: the OR form costs O(depth) on SQLite and PostgreSQL alike.
        position, after = tuple_(sort, id_column), tuple_(key, last_id)
        stmt = stmt.where(position < after if descending else position > after)
    order = (sort.desc(), id_column.desc()) if descending else (sort.asc(), id_column.asc())
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _encode(getattr(last, sort.key), getattr(last, id_column.key))
    return Page(items=rows, next_cursor=next_cursor)


def prefix_filter(column: InstrumentedAttribute[Any], prefix: str) -> Any:
    """``column`` starts with ``prefix``, as a range an index can seek.

    ``LIKE 'p%'`` cannot use a plain index and is case-insensitive on SQLite but
    not on PostgreSQL. The half-open range lets the index seek; the exact substring
    check keeps the answer identical under any collation.
    """
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return (column >= prefix) & (column < upper) & (func.substr(column, 1, len(prefix)) == prefix)
