"""ASGI middleware: mutating API calls with an ``Idempotency-Key`` header run at most once.

Scoped per principal (the authenticated user behind the bearer token): two callers
may use the same key independently. The body is read whole (it is bounded by the
body limit) to fingerprint the request; the first answer is stored and replayed
byte for byte, with ``Idempotent-Replayed: true``. See :mod:`fuyun.services.idempotency`.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread

from fuyun.api import errors
from fuyun.domain.errors import FuyunError
from fuyun.services import idempotency
from fuyun.services.identity import authenticate
from fuyun.store.engine import Database

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_HEADER = idempotency.HEADER.lower().encode()


class IdempotencyMiddleware:
    def __init__(self, app: Any, db: Database, ttl_s: int, prefix: str = "/api/"):
        self.app, self.db, self.ttl_s, self.prefix = app, db, ttl_s, prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in MUTATING
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        key = headers.get(_HEADER)
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if key is None or not auth.lower().startswith("bearer "):
            await self.app(scope, receive, send)  # no key, or the route answers 401
            return
        try:
            principal = await to_thread.run_sync(authenticate, self.db, auth[7:].strip())
        except FuyunError:
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        print_ = idempotency.fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"), body
        )
        who = str(principal.user_id or principal.username)
        try:
            found = await to_thread.run_sync(
                lambda: idempotency.begin(
                    self.db,
                    who,
                    key.decode("latin-1"),
                    print_,
                    scope["method"],
                    scope["path"],
                    ttl_s=self.ttl_s,
                )
            )
        except FuyunError as exc:
            await _send_error(send, exc)
            return
        if isinstance(found, idempotency.Stored):
            await _replay(send, found)
            return
        await self._first(scope, receive, body, more, send, found)

    async def _first(
        self,
        scope: dict[str, Any],
        receive: Any,
        body: bytes,
        more: list[dict[str, Any]],
        send: Any,
        claimed: idempotency.Claimed,
    ) -> None:
        status, content_type, chunks = 500, None, []
        replayed = False

        async def replay_receive() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            # After the body: what the client really does next (usually, nothing until
            # it disconnects), so that disconnect detection downstream still works.
            return more.pop(0) if more else await receive()

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await to_thread.run_sync(idempotency.abandon, self.db, claimed)
            raise
        await to_thread.run_sync(
            idempotency.finish, self.db, claimed, status, content_type, b"".join(chunks)
        )


async def _read_body(receive: Any) -> tuple[bytes, list[dict[str, Any]]]:
    parts, rest = [], []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            rest.append(message)
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts), rest


async def _replay(send: Any, stored: idempotency.Stored) -> None:
    headers = [
        (b"idempotent-replayed", b"true"),
        (b"content-length", str(len(stored.body)).encode()),
    ]
    if stored.content_type:
        headers.append((b"content-type", stored.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


async def _send_error(send: Any, exc: FuyunError) -> None:
    response = errors.error_response(exc.status, exc.code, exc.message, exc.field)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
