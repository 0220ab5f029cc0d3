"""A QMP session with one QEMU process, through the maintained ``qemu.qmp`` client.

Every call opens a short session (connect, negotiate, commands, close): the driver
keeps no connection open across operations, so a restarted controller, or two
controllers, talk to the same QEMU without handing sockets over.

``qemu.qmp`` is asyncio; the driver is called from plain threads, some of which
already run an event loop of their own (an ASGI server's, a browser driver's).
So the coroutines run on one private loop in a daemon thread, and callers wait for
their results: no caller's loop is borrowed or blocked. The quirk worth knowing:
after ``quit`` the server hangs up and ``disconnect()`` raises ``EOFError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError

from fuyun.domain.errors import DriverError

T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _run(coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """Run ``coro`` on the private QMP loop and wait for it, at most ``timeout_s``."""
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="fuyun-qmp", daemon=True).start()
        loop = _loop
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout_s)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(f"no answer in {timeout_s} s") from None


class Monitor:
    def __init__(self, client: QMPClient, where: str, timeout_s: float) -> None:
        self._client, self._where, self._timeout_s = client, where, timeout_s

    def cmd(self, name: str, **args: Any) -> Any:
        try:
            return _run(self._client.execute(name, args or None), self._timeout_s)
        except ExecuteError as exc:
            raise DriverError(f"QMP {name} on {self._where}: {exc.error.desc}") from exc
        except (QMPError, OSError, EOFError) as exc:
            raise DriverError(f"QMP {name} on {self._where}: {exc!r}") from exc


@contextmanager
def session(socket: Path, *, timeout_s: float = 10.0) -> Iterator[Monitor]:
    """A negotiated QMP session; retries the connect while QEMU is still starting."""
    deadline = time.monotonic() + timeout_s
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # QEMU is still starting; connecting now only logs errors
    while True:
        client = QMPClient(str(socket))
        try:
            _run(client.connect(str(socket)), timeout_s)
            break
        except (ConnectError, OSError) as exc:
            _close(client)
            if time.monotonic() >= deadline:
                raise DriverError(f"QMP socket {socket} does not answer: {exc}") from exc
            time.sleep(0.02)
    try:
        yield Monitor(client, str(socket), timeout_s)
    finally:
        _close(client)


def _close(client: QMPClient) -> None:
    # The peer may have hung up already: after ``quit`` it always does.
    with suppress(EOFError, QMPError, OSError):
        _run(client.disconnect(), 5.0)
