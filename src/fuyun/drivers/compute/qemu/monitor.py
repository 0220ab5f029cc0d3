"""A QMP session with one QEMU process, through the maintained ``qemu.qmp`` client.

Every call opens a short session (connect, negotiate, commands, close): the driver
keeps no connection open across operations, so a restarted controller, or two
controllers, talk to the same QEMU without handing sockets over. The quirk worth
knowing: after ``quit`` the server hangs up and ``close()`` raises ``EOFError``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, ExecuteError, QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

from fuyun.domain.errors import DriverError


class Monitor:
    def __init__(self, qmp: QEMUMonitorProtocol, where: str) -> None:
        self._qmp, self._where = qmp, where

    def cmd(self, name: str, **args: Any) -> Any:
        try:
            return self._qmp.cmd(name, **args)
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
        qmp = QEMUMonitorProtocol(str(socket))
        try:
            qmp.connect()
            break
        except (ConnectError, OSError) as exc:
            _close(qmp)
            if time.monotonic() >= deadline:
                raise DriverError(f"QMP socket {socket} does not answer: {exc}") from exc
            time.sleep(0.02)
    qmp.settimeout(timeout_s)
    try:
        yield Monitor(qmp, str(socket))
    finally:
        _close(qmp)


def _close(qmp: QEMUMonitorProtocol) -> None:
    # The peer may have hung up already: after ``quit`` it always does.
    with suppress(EOFError, QMPError, OSError):
        qmp.close()
