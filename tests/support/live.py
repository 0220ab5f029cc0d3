"""Real ``uvicorn`` servers for tests that need separate processes talking to one store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up in {timeout_s} s")


class ServerLogs:
    """Where the servers write; read it when a test fails to see why."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.paths if p.exists())


@contextmanager
def cli_server(
    workdir: Path, config_dir: Path, *, with_database: bool = False
) -> Iterator[dict[str, str]]:
    """One API process on a fresh store of the ``small`` fabric; yields the environment
    a CLI needs to talk to it: its URL, the operator's token and a config directory of
    its own (plus the store's URL, ``with_database``, for commands that read it)."""
    from fuyun.config import Settings
    from fuyun.drivers.compute.fake import FakeComputeDriver
    from fuyun.services.bootstrap import bootstrap
    from fuyun.store.engine import Database

    url = f"sqlite:///{workdir / 'fuyun.db'}"
    db = Database(url)
    token = bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small").token
    db.dispose()
    with api_servers(url, env={"FUYUN_ARGON2_PROFILE": "fast"}) as urls:
        env = {"FUYUN_URL": urls[0], "FUYUN_TOKEN": token, "XDG_CONFIG_HOME": str(config_dir)}
        yield {**env, "FUYUN_DATABASE_URL": url} if with_database else env


@contextmanager
def api_servers(
    database_url: str,
    count: int = 1,
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> Iterator[list[str]]:
    """``count`` API processes on one database; yields their base URLs.

    Server output goes to files (never an unread pipe, which would block a chatty
    server); the files are printed if the block fails.
    """
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    logs: list[Path] = []
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="fuyun-api-"))
    full_env = {**os.environ, "FUYUN_DATABASE_URL": database_url, **(env or {})}
    try:
        for i in range(count):
            port = free_port()
            log = log_dir / f"api-{i}.log"
            logs.append(log)
            with log.open("wb") as sink:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "--factory",
                        "fuyun.api.asgi:app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                    ],
                    env=full_env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_until_up(url, proc)
        yield urls
    except BaseException:
        sys.stderr.write(f"--- API server logs ---\n{ServerLogs(logs).text()[-5000:]}\n")
        raise
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
