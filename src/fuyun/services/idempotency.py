"""Idempotent mutations: a request retried with the same ``Idempotency-Key`` happens once.

The first request with a key claims a row (unique per principal and key) before it
runs; its answer is stored in the row when it ends. A retry finds the row and gets
the stored answer — it never runs again — while one that arrives during the first
waits for it. The same key with a different request (method, path or body) is
refused, since answering it with another request's result would be a lie. Answers
of 5xx are not stored: the request did not take effect, so a retry may run it.

Rows expire after ``idempotency_ttl_s``; an expired key is free again.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from fuyun.domain.errors import Conflict, InvalidInput
from fuyun.store.engine import Database
from fuyun.store.models import IdempotencyKey
from fuyun.store.types import utcnow

HEADER = "Idempotency-Key"
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# A first request older than this that never finished died with its process: retake it.
STALE_S = 900.0


@dataclass(frozen=True)
class Stored:
    status: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Claimed:
    row_id: uuid.UUID


def check_key(key: str) -> str:
    if not KEY.match(key):
        raise InvalidInput(
            f"{HEADER} must be 1-255 printable ASCII characters without spaces", field=HEADER
        )
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def begin(
    db: Database,
    principal: str,
    key: str,
    print_: str,
    method: str,
    path: str,
    *,
    ttl_s: int,
    wait_s: float = 60.0,
) -> Claimed | Stored:
    """Claim ``key`` for this request, or return the answer of the request that holds it."""
    check_key(key)
    if random.random() < 0.01:
        purge(db)
    deadline = time.monotonic() + wait_s
    pause = 0.01
    while True:
        claimed = _try_insert(db, principal, key, print_, method, path, ttl_s)
        if claimed is not None:
            return claimed
        with db.read_session() as s:
            row = s.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.principal == principal, IdempotencyKey.key == key
                )
            )
        if row is None:  # expired and purged meanwhile: try again
            continue
        now = utcnow()
        if row.expires_at <= now or (
            row.status is None and (now - row.created_at).total_seconds() > STALE_S
        ):
            _drop(db, row.id)
            continue
        if row.fingerprint != print_:
            raise Conflict(
                f"{HEADER} '{key}' was used for a different request",
                field=HEADER,
                code="idempotency_key_reused",
            )
        if row.status is not None:
            return Stored(row.status, row.content_type, row.body or b"")
        if time.monotonic() >= deadline:
            raise Conflict(
                f"the first request with {HEADER} '{key}' is still being served; retry later",
                field=HEADER,
                code="idempotency_in_progress",
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)


def _try_insert(
    db: Database, principal: str, key: str, print_: str, method: str, path: str, ttl_s: int
) -> Claimed | None:
    now = utcnow()
    row = IdempotencyKey(
        principal=principal,
        key=key,
        fingerprint=print_,
        method=method,
        path=path[:512],
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )
    try:
        with db.write_session() as s:
            s.add(row)
            s.flush()
            return Claimed(row.id)
    except IntegrityError:
        return None


def finish(
    db: Database, claimed: Claimed, status: int, content_type: str | None, body: bytes
) -> None:
    """Store the answer (or free the key when the request did not take effect: 5xx)."""
    if status >= 500:
        _drop(db, claimed.row_id)
        return
    with db.write_session() as s:
        s.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == claimed.row_id)
            .values(status=status, content_type=content_type, body=body)
        )


def abandon(db: Database, claimed: Claimed) -> None:
    _drop(db, claimed.row_id)


def _drop(db: Database, row_id: uuid.UUID) -> None:
    with db.write_session() as s:
        s.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))


def purge(db: Database) -> int:
    """Delete expired keys; returns how many."""
    with db.write_session() as s:
        result = s.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow()))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
