"""Nautobot as a benchmark peer for fuyun's IPAM.

Why this exists: "next free address" allocation is the operation our IPAM has to beat, and the
most widely deployed open-source source-of-truth that offers it over HTTP is the NetBox family.
Nautobot (a NetBox fork, on PyPI) exposes it as ``POST /api/ipam/prefixes/<id>/available-ips/``.
We run the real thing rather than a model of it, so that the comparison shows its actual
behaviour: it computes the free set *before* taking its Redis lock, so racing clients are handed
the same address and all but one get HTTP 400, and it rebuilds the free set from every address
in the prefix on each call, so latency grows with occupancy.

Why set-up is separate from measurement: installing Nautobot takes about a minute and its
``migrate`` about five, while a measurement takes seconds.  :func:`ensure_nautobot` therefore
caches everything under ``benchmarks/.cache/nautobot`` (gitignored): its own venv, a private
PostgreSQL cluster, the generated ``nautobot_config.py``, and one marker file per completed step.
A second call only starts PostgreSQL, Redis and the web server again, which takes seconds.

Why private servers: the benchmark must not depend on, or disturb, any PostgreSQL or Redis the
machine already runs.  Each start picks free 127.0.0.1 ports and rewrites the managed block at
the end of ``nautobot_config.py`` to point at them.  Everything listens on 127.0.0.1 only and
all benchmark traffic goes there.

Process ownership: Redis and the uWSGI server are foreground children of the harness, in their
own process groups, asked to die with it (``PR_SET_PDEATHSIG``) and stopped by
:meth:`NautobotPeer.stop` or at interpreter exit.  PostgreSQL is daemonised by ``pg_ctl`` (as the
``postgres`` user when we are root) and stopped with ``pg_ctl stop``; a cluster or server that a
crashed earlier run left behind is found through its pid file and stopped before a new start.

Run ``python benchmarks/peers/nautobot.py`` for the standard comparison table.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

#: Pinned so numbers stay comparable between sessions; the cached venv is rebuilt when it changes.
NAUTOBOT_VERSION = "3.2.7"
DEFAULT_CACHE_DIR = Path("benchmarks/.cache/nautobot")
LOOPBACK = "127.0.0.1"
#: Repository root, against which a relative cache dir is resolved so any working directory works.
REPO_ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "nautobot"
DB_USER = "postgres"
BENCH_USER = "bench"
NAMESPACE = "Global"
STATUS = "Active"
#: Two workers per core: Nautobot's request handling is CPU-bound Python with DB round trips.
DEFAULT_WORKERS = max(2, 2 * (os.cpu_count() or 1))
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0
#: Bulk fills post this many allocation requests per call; Nautobot holds its lock per call.
FILL_CHUNK = 200
CONFIG_BEGIN = "# --- BEGIN fuyun benchmark harness (managed block, rewritten on every start) ---"
CONFIG_END = "# --- END fuyun benchmark harness ---"


# --------------------------------------------------------------------------------------------
# Layout and small helpers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Every path the harness uses, derived from one cache dir so a wipe resets everything."""

    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def server(self) -> Path:
        return self.venv / "bin" / "nautobot-server"

    @property
    def nautobot_root(self) -> Path:
        return self.root / "nautobot-root"

    @property
    def config(self) -> Path:
        return self.nautobot_root / "nautobot_config.py"

    @property
    def pg_dir(self) -> Path:
        return self.root / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_run(self) -> Path:
        return self.pg_dir / "run"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def marker(self, name: str) -> Path:
        return self.state / f"{name}.done"

    def pidfile(self, name: str) -> Path:
        return self.state / f"{name}.pid"


def _resolve_cache_dir(cache_dir: Path) -> Path:
    """Relative paths are taken from the repository root, so callers may run from anywhere."""
    return (cache_dir if cache_dir.is_absolute() else REPO_ROOT / cache_dir).resolve()


def _free_ports(count: int) -> list[int]:
    """Ask the kernel for *count* distinct free loopback ports (held open together, then freed)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log, for error messages that explain themselves."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a set-up command, streaming its output to *log*; on failure raise with the tail.

    Output goes straight to the file (not through a pipe) so a five-minute ``migrate`` can be
    followed with ``tail -f``; the returned ``stdout`` is this command's part of the log.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(map(str, cmd))}\n")
        fh.flush()
        start = fh.tell()
        proc = subprocess.run(
            [str(c) for c in cmd],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    with log.open("rb") as fh:
        fh.seek(start)
        output = fh.read().decode(errors="replace")
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- last lines of {log} ---\n{_tail(log)}"
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout=output)


def _die_with_parent() -> Callable[[], None] | None:
    """preexec hook so children get SIGTERM if the harness dies without calling stop()."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return hook


def _wait_until(
    what: str, probe: Callable[[], bool], timeout: float, alive: Callable[[], bool]
) -> None:
    """Poll *probe* with a short back-off until true; fail early if the process behind it died."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if probe():
            return
        if not alive():
            raise RuntimeError(f"{what} exited before it became ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def _stop_group(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """TERM then KILL the process group *proc* leads (uWSGI master plus workers, or redis)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    """True while *pid* runs; a zombie nobody reaps (we are not its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _kill_stale(pidfile: Path, marker: str) -> None:
    """Stop a server a crashed earlier run left behind, if that pid is still *ours*.

    Ours means *marker* (a path inside the cache dir) is in its command line or is its working
    directory: redis-server rewrites its process title, but it chdirs into its ``--dir``.  The
    cache lock guarantees no live harness owns it, and the check leaves a recycled pid alone.
    """
    try:
        pid = int(pidfile.read_text().strip())
        proc = Path(f"/proc/{pid}")
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        cwd = os.readlink(proc / "cwd")
    except (OSError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    if marker in cmdline or cwd == marker:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def _secret(path: Path, make: Callable[[], str]) -> str:
    """Read a generated secret, creating it (mode 600) on first use so it survives restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


# --------------------------------------------------------------------------------------------
# System packages, venv, PostgreSQL, Redis
# --------------------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    """Newest Debian PostgreSQL server binaries; they are not on PATH after a plain install."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    which = shutil.which("initdb")
    return Path(which).resolve().parent if which else None


def _ensure_system_packages(layout: _Layout) -> None:
    """apt-get install PostgreSQL and Redis when missing: the cached venv cannot hold them."""
    missing = []
    if _pg_bindir() is None:
        missing.append("postgresql")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"missing {', '.join(missing)}; install them (needs root): apt-get install"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = layout.logs / "apt.log"
    install = ["apt-get", "install", "-y", *missing]
    if _run(install, log=log, env=env, timeout=1800, check=False).returncode != 0:
        # A fresh machine has no package lists yet; update once and retry.
        _run(["apt-get", "update"], log=log, env=env, timeout=1800)
        _run(install, log=log, env=env, timeout=1800)


def _ensure_venv(layout: _Layout) -> None:
    """Nautobot's own venv: its pins (Django 5, psycopg2, celery...) must not touch ours."""
    marker = layout.marker(f"venv-{NAUTOBOT_VERSION}")
    if marker.exists() and layout.server.exists():
        return
    log = layout.logs / "pip.log"
    if not (layout.venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", layout.venv], log=log)
    py = layout.venv / "bin" / "python"
    pip: list[str | os.PathLike[str]] = [py, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--upgrade", "pip"], log=log, timeout=900)
    _run([*pip, "install", f"nautobot=={NAUTOBOT_VERSION}"], log=log, timeout=1800)
    # A new version needs its own migrations run.
    for stale in layout.state.glob("migrated-*.done"):
        stale.unlink()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _as_postgres(cmd: Sequence[str | os.PathLike[str]]) -> list[str]:
    """PostgreSQL refuses to run as root, so when we are root run its tools as ``postgres``."""
    args = [str(c) for c in cmd]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _chown_postgres(*paths: Path) -> None:
    if os.geteuid() == 0:
        for p in paths:
            shutil.chown(p, "postgres", "postgres")


def _ensure_pg_cluster(layout: _Layout, password: str) -> Path:
    """initdb a private cluster under the cache dir (once); returns the server bin dir."""
    bindir = _pg_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    marker = layout.marker("initdb")
    if marker.exists() and (layout.pg_data / "PG_VERSION").exists():
        return bindir
    shutil.rmtree(layout.pg_dir, ignore_errors=True)
    layout.pg_run.mkdir(parents=True)
    pwfile = layout.pg_dir / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    _chown_postgres(layout.pg_dir, layout.pg_run, pwfile)
    _run(
        _as_postgres(
            [
                bindir / "initdb",
                "-D",
                layout.pg_data,
                "-U",
                DB_USER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ]
        ),
        log=layout.logs / "initdb.log",
        cwd=layout.pg_dir,
    )
    pwfile.unlink()
    # A new cluster is an empty database: everything downstream must be redone.
    for stale in [*layout.state.glob("migrated-*.done"), layout.marker("superuser")]:
        stale.unlink(missing_ok=True)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return bindir


def _pg_ctl(layout: _Layout, bindir: Path, *args: str) -> list[str]:
    return _as_postgres([bindir / "pg_ctl", "-D", layout.pg_data, *args])


def _pg_stop_cmd(layout: _Layout, bindir: Path) -> list[str]:
    """Fast shutdown: rolls back open transactions, which a benchmark database can afford."""
    return _pg_ctl(layout, bindir, "stop", "-m", "fast", "-w", "-t", "60")


def _start_pg(layout: _Layout, bindir: Path, port: int, password: str) -> None:
    """Start the private cluster on *port* and make sure Nautobot's database exists."""
    log = layout.logs / "pg_ctl.log"
    stop = _pg_stop_cmd(layout, bindir)
    # A postmaster left running by a crashed run holds the data dir: stop it first.
    if (
        _run(_pg_ctl(layout, bindir, "status"), log=log, cwd=layout.pg_dir, check=False).returncode
        == 0
    ):
        _run(stop, log=log, cwd=layout.pg_dir)
    opts = (
        f"-c port={port} -c listen_addresses={LOOPBACK} "
        f"-c unix_socket_directories='{layout.pg_run}'"
    )
    server_log = layout.pg_dir / "server.log"
    # pg_ctl -w polls the postmaster itself until it accepts connections.
    _run(
        _pg_ctl(layout, bindir, "-l", str(server_log), "-w", "-t", "120", "-o", opts, "start"),
        log=log,
        cwd=layout.pg_dir,
    )
    env = {**os.environ, "PGPASSWORD": password}
    psql: list[str | os.PathLike[str]] = [
        bindir / "psql",
        "-h",
        LOOPBACK,
        "-p",
        str(port),
        "-U",
        DB_USER,
        "-d",
        "postgres",
    ]
    found = _run(
        [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"], log=log, env=env
    )
    if found.stdout.strip() != "1":
        _run([*psql, "-c", f"CREATE DATABASE {DB_NAME}"], log=log, env=env)


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _start_redis(layout: _Layout, port: int) -> subprocess.Popen[bytes]:
    """A private, non-persistent redis-server in the foreground (no --daemonize, no zombies)."""
    redis = shutil.which("redis-server")
    if redis is None:
        raise RuntimeError("redis-server not found")
    layout.redis_dir.mkdir(parents=True, exist_ok=True)
    pidfile = layout.pidfile("redis")
    _kill_stale(pidfile, str(layout.redis_dir))
    log = (layout.logs / "redis.log").open("ab")
    proc = subprocess.Popen(
        [
            redis,
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(layout.redis_dir),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent(),  # only prctl, which is fork-safe
    )
    log.close()
    pidfile.write_text(f"{proc.pid}\n")
    try:
        _wait_until("redis-server", lambda: _redis_ping(port), 30, lambda: proc.poll() is None)
    except Exception:
        _stop_group(proc)
        raise RuntimeError(f"redis-server failed:\n{_tail(layout.logs / 'redis.log')}") from None
    return proc


# --------------------------------------------------------------------------------------------
# Nautobot configuration, migrations, user, web server
# --------------------------------------------------------------------------------------------


def _nautobot_env(layout: _Layout) -> dict[str, str]:
    """Environment for every nautobot-server call: our root and config, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NAUTOBOT_", "OTEL_"))}
    env.update(
        NAUTOBOT_ROOT=str(layout.nautobot_root),
        NAUTOBOT_CONFIG=str(layout.config),
        NAUTOBOT_INSTALLATION_METRICS_ENABLED="False",
        PYTHONUNBUFFERED="1",
    )
    return env


def _write_config(layout: _Layout, pg_port: int, redis_port: int, pg_password: str) -> None:
    """Generate nautobot_config.py once with ``init``; rewrite our block at its end every start.

    The block is explicit Python rather than NAUTOBOT_* environment variables so that the config
    file alone explains where this Nautobot's database and Redis are.
    """
    env = _nautobot_env(layout)
    if not layout.config.exists():
        layout.nautobot_root.mkdir(parents=True, exist_ok=True)
        _run(
            [layout.server, "init", "--disable-installation-metrics", layout.config],
            log=layout.logs / "init.log",
            env=env,
        )
    secret_key = _secret(layout.state / "secret_key", lambda: secrets.token_urlsafe(50))
    text = layout.config.read_text()
    if CONFIG_BEGIN in text:
        text = text[: text.index(CONFIG_BEGIN)].rstrip() + "\n"
    block = f"""
{CONFIG_BEGIN}
# Private PostgreSQL and Redis on loopback ports picked afresh by benchmarks/peers/nautobot.py.
SECRET_KEY = {secret_key!r}
ALLOWED_HOSTS = ["{LOOPBACK}", "localhost"]
DEBUG = False
INSTALLATION_METRICS_ENABLED = False
METRICS_ENABLED = False
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": {DB_NAME!r},
        "USER": {DB_USER!r},
        "PASSWORD": {pg_password!r},
        "HOST": "{LOOPBACK}",
        "PORT": "{pg_port}",
        "CONN_MAX_AGE": 300,
    }}
}}
CACHES["default"]["BACKEND"] = "django_redis.cache.RedisCache"
CACHES["default"]["LOCATION"] = "redis://{LOOPBACK}:{redis_port}/1"
CELERY_BROKER_URL = "redis://{LOOPBACK}:{redis_port}/0"
{CONFIG_END}
"""
    layout.config.write_text(text + block)


def _nbshell(layout: _Layout, code: str, log_name: str, timeout: float = 600.0) -> str:
    """Run Python inside Nautobot's Django (``nautobot-server nbshell --command``)."""
    proc = _run(
        [layout.server, "nbshell", "--quiet-load", "--command", code],
        log=layout.logs / log_name,
        env=_nautobot_env(layout),
        timeout=timeout,
    )
    return proc.stdout


def _migrate(layout: _Layout) -> None:
    """``nautobot-server migrate`` once per Nautobot version and cluster (about five minutes)."""
    marker = layout.marker(f"migrated-{NAUTOBOT_VERSION}")
    if marker.exists():
        return
    _run(
        [layout.server, "migrate", "--no-input"],
        log=layout.logs / "migrate.log",
        env=_nautobot_env(layout),
        timeout=3600,
    )
    marker.touch()


def _ensure_superuser(layout: _Layout, token: str, password: str, *, force: bool = False) -> None:
    """A superuser with a fixed API token, so the token survives restarts and re-runs."""
    marker = layout.marker("superuser")
    if marker.exists() and not force:
        return
    code = f"""
from django.contrib.auth import get_user_model
from nautobot.users.models import Token
user, _ = get_user_model().objects.get_or_create(username={BENCH_USER!r})
user.is_superuser = True
user.is_staff = True
user.is_active = True
user.set_password({password!r})
user.save()
Token.objects.filter(user=user).exclude(key={token!r}).delete()
Token.objects.update_or_create(key={token!r}, defaults={{"user": user, "write_enabled": True}})
print("SUPERUSER-OK")
"""
    out = _nbshell(layout, code, "superuser.log")
    if "SUPERUSER-OK" not in out:
        raise RuntimeError(f"creating the superuser failed:\n{out[-2000:]}")
    marker.touch()


def _start_web(layout: _Layout, port: int, workers: int) -> subprocess.Popen[bytes]:
    """uWSGI through ``nautobot-server start``: *workers* processes, HTTP spoken by the workers.

    ``--lazy-apps`` loads Django in each worker after the fork so no DB or Redis connection is
    shared between processes; ``--die-on-term`` makes SIGTERM a shutdown rather than a reload.
    """
    pidfile = layout.pidfile("web")
    _kill_stale(pidfile, str(layout.config))
    log = (layout.logs / "web.log").open("ab")
    proc = subprocess.Popen(
        [
            str(layout.server),
            f"--config={layout.config}",
            "start",
            f"--http-socket={LOOPBACK}:{port}",
            "--master",
            f"--processes={workers}",
            "--threads=1",
            "--lazy-apps",
            "--die-on-term",
            "--enable-threads",
            "--disable-logging",
            "--skip-atexit-teardown",  # workers spent up to 11 s in Py_Finalize on shutdown
            "--listen=128",
            "--buffer-size=16384",
            # --http-socket closes after each response without saying so; clients that keep
            # the connection would see resets.  (--http11-socket keeps it, but then a worker is
            # pinned to one client and 16 racing clients would really be 4.)
            "--add-header=Connection: close",
        ],
        env=_nautobot_env(layout),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent(),  # only prctl, which is fork-safe
    )
    log.close()
    pidfile.write_text(f"{proc.pid}\n")
    return proc


# --------------------------------------------------------------------------------------------
# The peer handle
# --------------------------------------------------------------------------------------------


@dataclass
class NautobotPeer:
    """A running Nautobot: where it listens, how to authenticate, and how to stop it.

    Also a context manager; :meth:`stop` is idempotent and also registered with ``atexit``.
    """

    base_url: str
    token: str
    version: str
    cache_dir: Path
    status_id: str
    namespace_id: str
    workers: int
    setup_seconds: float = 0.0
    setup_steps: dict[str, float] = field(default_factory=dict)
    _layout: _Layout | None = field(default=None, repr=False)
    _web: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _redis: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _pg_stop: list[str] | None = field(default=None, repr=False)
    _lock_fd: int | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Token {self.token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def client(self, timeout: float = REQUEST_TIMEOUT_S) -> httpx.Client:
        """A fresh client (one per thread: httpx clients are not meant to be shared by racers)."""
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout)

    def stop(self) -> None:
        """Stop the web server, Redis and PostgreSQL this peer started, then free the cache."""
        if self._web is not None:
            _stop_group(self._web)
            self._web = None
        if self._redis is not None:
            _stop_group(self._redis)
            self._redis = None
        if self._pg_stop is not None and self._layout is not None:
            _run(
                self._pg_stop,
                log=self._layout.logs / "pg_ctl.log",
                cwd=self._layout.pg_dir,
                check=False,
            )
            self._pg_stop = None
        if self._layout is not None:
            for name in ("web", "redis"):
                self._layout.pidfile(name).unlink(missing_ok=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> NautobotPeer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _lock_cache(layout: _Layout) -> int:
    """Hold an exclusive lock for the peer's lifetime: one running Nautobot per cache dir.

    It is what makes killing leftovers safe: whoever started them is gone.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"{layout.root} is in use by another running Nautobot peer") from None
    return fd


def _api_ready(base_url: str, token: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            r = httpx.get(
                f"{base_url}/api/status/", headers={"Authorization": f"Token {token}"}, timeout=5
            )
        except httpx.HTTPError:
            return False
        return r.status_code in (200, 401, 403)  # answered by Django: the app is loaded

    return probe


def _lookup_id(client: httpx.Client, path: str, name: str) -> str:
    r = client.get(path, params={"name": name})
    r.raise_for_status()
    results = r.json()["results"]
    if not results:
        raise RuntimeError(f"no {path} named {name!r} in Nautobot")
    return str(results[0]["id"])


def ensure_nautobot(
    cache_dir: Path = DEFAULT_CACHE_DIR, workers: int = DEFAULT_WORKERS
) -> NautobotPeer:
    """Install (once), configure (once), migrate (once) and start a private Nautobot.

    Idempotent: each completed step leaves a marker under ``cache_dir/state``; a cached call
    only starts PostgreSQL, Redis and uWSGI on fresh loopback ports.  The caller owns the
    returned peer and must :meth:`NautobotPeer.stop` it (or use it as a context manager).
    """
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    layout = _Layout(_resolve_cache_dir(cache_dir))
    lock_fd = _lock_cache(layout)
    layout.state.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    peer = NautobotPeer(
        base_url="",
        token="",
        version="",
        cache_dir=layout.root,
        status_id="",
        namespace_id="",
        workers=workers,
        _layout=layout,
        _lock_fd=lock_fd,
    )
    atexit.register(peer.stop)

    def step(name: str, fn: Callable[[], Any]) -> Any:
        s = time.perf_counter()
        result = fn()
        steps[name] = round(time.perf_counter() - s, 2)
        return result

    try:
        pg_password = _secret(layout.state / "pg_password", lambda: secrets.token_hex(16))
        token = _secret(layout.state / "api_token", lambda: secrets.token_hex(20))
        user_password = _secret(layout.state / "user_password", lambda: secrets.token_urlsafe(16))
        pg_port, redis_port, web_port = _free_ports(3)

        step("system packages", lambda: _ensure_system_packages(layout))
        step("venv + pip install", lambda: _ensure_venv(layout))
        bindir = step("initdb", lambda: _ensure_pg_cluster(layout, pg_password))
        # Known before starting, so a failure half-way through still stops the cluster.
        peer._pg_stop = _pg_stop_cmd(layout, bindir)
        step("postgres start", lambda: _start_pg(layout, bindir, pg_port, pg_password))
        peer._redis = step("redis start", lambda: _start_redis(layout, redis_port))
        step("config", lambda: _write_config(layout, pg_port, redis_port, pg_password))
        step("migrate", lambda: _migrate(layout))
        step("superuser + token", lambda: _ensure_superuser(layout, token, user_password))

        base_url = f"http://{LOOPBACK}:{web_port}"

        def start_web() -> None:
            peer._web = web = _start_web(layout, web_port, workers)
            try:
                _wait_until(
                    "nautobot web server",
                    _api_ready(base_url, token),
                    READY_TIMEOUT_S,
                    lambda: web.poll() is None,
                )
            except Exception as exc:
                raise RuntimeError(f"{exc}\n{_tail(layout.logs / 'web.log')}") from exc

        step("web start", start_web)
        with httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Token {token}"},
            timeout=REQUEST_TIMEOUT_S,
        ) as c:
            status = c.get("/api/status/")
            if status.status_code in (401, 403):
                # Database was reset behind the marker's back: recreate user and token.
                step(
                    "superuser + token",
                    lambda: _ensure_superuser(layout, token, user_password, force=True),
                )
                status = c.get("/api/status/")
            status.raise_for_status()
            peer.version = str(status.json().get("nautobot-version", "?"))
            peer.status_id = _lookup_id(c, "/api/extras/statuses/", STATUS)
            peer.namespace_id = _lookup_id(c, "/api/ipam/namespaces/", NAMESPACE)
            # Warm every worker (each loads Django lazily) before anyone measures.
            for _ in range(2 * workers):
                c.get("/api/ipam/prefixes/", params={"limit": 1}).raise_for_status()
    except BaseException:
        peer.stop()
        raise
    peer.base_url = base_url
    peer.token = token
    peer.setup_steps = steps
    peer.setup_seconds = round(time.perf_counter() - t0, 2)
    return peer


# --------------------------------------------------------------------------------------------
# IPAM operations and measurements
# --------------------------------------------------------------------------------------------


def _purge_prefixes(peer: NautobotPeer, cidrs: Sequence[str]) -> None:
    """Delete earlier runs' prefixes and their addresses in one Django process.

    Done through nbshell because the API deletes one object at a time with change logging:
    thousands of addresses would take minutes.
    """
    if peer._layout is None:
        raise RuntimeError("peer has no cache layout")
    code = f"""
import netaddr
from nautobot.ipam.models import IPAddress, Prefix
for cidr in {list(cidrs)!r}:
    mine = Prefix.objects.filter(namespace__name={NAMESPACE!r})
    for p in mine.net_equals(netaddr.IPNetwork(cidr)):
        IPAddress.objects.filter(parent=p).delete()
        p.delete()
print("PURGE-OK")
"""
    out = _nbshell(peer._layout, code, "purge.log")
    if "PURGE-OK" not in out:
        raise RuntimeError(f"purging {cidrs} failed:\n{out[-2000:]}")


def create_prefix(peer: NautobotPeer, cidr: str) -> str:
    """Create an empty ``network`` prefix in the Global namespace; returns its id.

    A prefix left by an earlier run is purged first, addresses included, so every measurement
    starts from an empty prefix.
    """
    cidr = str(ipaddress.ip_network(cidr, strict=True))
    with peer.client() as c:
        found = c.get(
            "/api/ipam/prefixes/", params={"prefix": cidr, "namespace": peer.namespace_id}
        )
        found.raise_for_status()
        if found.json()["count"]:
            _purge_prefixes(peer, [cidr])
        r = c.post(
            "/api/ipam/prefixes/",
            json={
                "prefix": cidr,
                "namespace": peer.namespace_id,
                "status": peer.status_id,
                "type": "network",
            },
        )
        if r.status_code != 201:
            raise RuntimeError(f"creating prefix {cidr}: HTTP {r.status_code} {r.text[:500]}")
        return str(r.json()["id"])


@dataclass(frozen=True)
class _Allocation:
    status: int  # HTTP status, or 0 when the request itself failed (timeout, reset)
    seconds: float
    address: str | None
    error: str | None


def _allocate(peer: NautobotPeer, prefix_id: str, client: httpx.Client) -> _Allocation:
    """One next-free allocation; the body carries the Status Nautobot 2.x+ requires."""
    url = f"/api/ipam/prefixes/{prefix_id}/available-ips/"
    start = time.perf_counter()
    try:
        r = client.post(url, json={"status": peer.status_id})
    except httpx.HTTPError as exc:
        return _Allocation(0, time.perf_counter() - start, None, type(exc).__name__)
    seconds = time.perf_counter() - start
    if r.status_code == 201:
        return _Allocation(201, seconds, str(r.json()["address"]), None)
    return _Allocation(r.status_code, seconds, None, r.text[:300])


def allocate_one(peer: NautobotPeer, prefix_id: str, client: httpx.Client) -> tuple[int, float]:
    """``POST /api/ipam/prefixes/<id>/available-ips/`` once: (HTTP status, seconds)."""
    a = _allocate(peer, prefix_id, client)
    return a.status, a.seconds


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: honest for the small sample counts used here."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def measure_allocations(peer: NautobotPeer, cidr: str, clients: int, total: int) -> dict[str, Any]:
    """*total* next-free requests from *clients* racing threads, each with its own client.

    Counts every request (a 400 is a request Nautobot refused, not a retry), so
    ``allocations_per_s`` is successful allocations over wall time and ``duplicates`` is how
    many successful answers repeated an address already handed out.
    """
    prefix_id = create_prefix(peer, cidr)
    lock = threading.Lock()
    claimed = 0
    results: list[_Allocation] = []

    def worker() -> None:
        nonlocal claimed
        mine: list[_Allocation] = []
        with peer.client() as client:
            while True:
                with lock:
                    if claimed >= total:
                        break
                    claimed += 1
                mine.append(_allocate(peer, prefix_id, client))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, name=f"alloc-{i}") for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start

    addresses = [r.address for r in results if r.address is not None]
    latencies = sorted(r.seconds for r in results)
    errors = Counter(r.error for r in results if r.error)
    return {
        "cidr": cidr,
        "clients": clients,
        "requests": len(results),
        "success": len(addresses),
        "by_status": dict(sorted(Counter(r.status for r in results).items())),
        "wall_s": round(wall, 3),
        "allocations_per_s": round(len(addresses) / wall, 1) if wall else 0.0,
        "requests_per_s": round(len(results) / wall, 1) if wall else 0.0,
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "duplicates": len(addresses) - len(set(addresses)),
        "top_errors": [e for e, _ in errors.most_common(2)],
    }


def _usable_hosts(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    """What Nautobot will hand out of a network prefix: IPv4 drops network and broadcast."""
    if net.version == 4 and net.prefixlen < 31:
        return net.num_addresses - 2
    return net.num_addresses


def _bulk_fill(peer: NautobotPeer, prefix_id: str, client: httpx.Client, count: int) -> None:
    """Allocate *count* addresses fast: the endpoint takes a list and hands out that many."""
    url = f"/api/ipam/prefixes/{prefix_id}/available-ips/"
    while count > 0:
        n = min(count, FILL_CHUNK)
        r = client.post(url, json=[{"status": peer.status_id}] * n)
        if r.status_code != 201:
            raise RuntimeError(f"bulk fill: HTTP {r.status_code} {r.text[:300]}")
        count -= n


def measure_next_free_latency(
    peer: NautobotPeer, cidr: str, fill: int, sample_every: int, repeats: int = 3
) -> list[tuple[int, float]]:
    """Latency of a single next-free allocation as the prefix fills up.

    Returns ``(addresses already in the prefix, seconds)`` at occupancy 0, *sample_every*,
    2 x *sample_every*, ... up to *fill* (capped at what the prefix can hold).  Each point is
    the median of *repeats* consecutive single allocations, because one request on a shared
    2-core machine is at the mercy of the scheduler.  Between points the prefix is filled
    through the endpoint's bulk form, so a /8 reaches thousands of addresses in minutes
    instead of the half hour single requests would take.
    """
    if sample_every < 1 or repeats < 1:
        raise ValueError("sample_every and repeats must be >= 1")
    capacity = _usable_hosts(ipaddress.ip_network(cidr, strict=True))
    fill = min(fill, capacity - 1)
    prefix_id = create_prefix(peer, cidr)
    samples: list[tuple[int, float]] = []
    point = 0  # occupancy at which the next point is taken
    occupancy = 0
    with peer.client() as client:
        while point <= fill:
            _bulk_fill(peer, prefix_id, client, point - occupancy)
            occupancy = point
            timings = []
            for _ in range(min(repeats, capacity - occupancy)):
                status, seconds = allocate_one(peer, prefix_id, client)
                if status != 201:
                    raise RuntimeError(f"next-free on {cidr} at {occupancy}: HTTP {status}")
                timings.append(seconds)
                occupancy += 1
            samples.append((point, statistics.median(timings)))
            point = max(point + sample_every, occupancy)
    return samples


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _load() -> str:
    """The 1-minute load average: on a shared 2-core box it says how far to trust a figure."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


@contextlib.contextmanager
def _timed(label: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    print(f"  ({label}: {time.perf_counter() - start:.1f}s)", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Set up (or reuse) Nautobot, run the standard measurements, print tables, stop it all."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    ap.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    ap.add_argument("--total", type=int, default=200, help="allocations per concurrency level")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--fill", type=int, default=3000, help="addresses per next-free prefix")
    ap.add_argument("--sample-every", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=3, help="single allocations per point")
    ap.add_argument("--json", type=Path, help="also write all figures to this file")
    args = ap.parse_args(argv)

    print(
        f"Nautobot {NAUTOBOT_VERSION} peer, cache {_resolve_cache_dir(args.cache_dir)}", flush=True
    )
    with ensure_nautobot(args.cache_dir, workers=args.workers) as peer:
        print(
            f"ready at {peer.base_url} (Nautobot {peer.version}, {peer.workers} uWSGI workers) "
            f"in {peer.setup_seconds:.1f}s",
            flush=True,
        )
        for name, secs in peer.setup_steps.items():
            print(f"  {name:<20} {secs:8.2f}s")

        # Disjoint ranges so no measurement's prefix contains another's addresses.
        alloc_cidrs = {n: f"172.16.{n % 256}.0/24" for n in args.clients}
        latency_cidrs = ["192.168.50.0/24", "172.20.0.0/16", "10.0.0.0/8"]
        with _timed("purge of earlier runs"):
            _purge_prefixes(peer, [*alloc_cidrs.values(), *latency_cidrs])

        print(
            "\nNext-free allocation under concurrency "
            f"({args.total} requests per row, one httpx.Client per thread)"
        )
        header = (
            f"{'prefix':<16} {'clients':>7} {'ok':>5} {'alloc/s':>8} {'req/s':>7} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'dups':>5}  by HTTP status  (machine load)"
        )
        print(header)
        print("-" * len(header))
        alloc_rows = []
        for n in args.clients:
            load = _load()
            row = measure_allocations(peer, alloc_cidrs[n], n, args.total)
            row["machine_load"] = load
            alloc_rows.append(row)
            print(
                f"{row['cidr']:<16} {n:>7} {row['success']:>5} {row['allocations_per_s']:>8} "
                f"{row['requests_per_s']:>7} {row['p50_ms']:>8} {row['p99_ms']:>8} "
                f"{row['duplicates']:>5}  {row['by_status']}  ({load})",
                flush=True,
            )
        for row in alloc_rows:
            if row["top_errors"]:
                print(f"  {row['clients']} clients, e.g.: {row['top_errors'][0][:160]}")

        print(
            f"\nNext-free latency vs occupancy (single client, median of {args.repeats} "
            f"consecutive single allocations per point, fill {args.fill}; a /24 holds 254)"
        )
        series: dict[str, list[tuple[int, float]]] = {}
        for cidr in latency_cidrs:
            every = args.sample_every if ipaddress.ip_network(cidr).prefixlen < 24 else 25
            with _timed(f"{cidr}: {_load()}"):
                series[cidr] = measure_next_free_latency(
                    peer, cidr, args.fill, every, repeats=args.repeats
                )
        table: dict[int, dict[str, float]] = {}
        for cidr, points in series.items():
            for occupancy, seconds in points:
                table.setdefault(occupancy, {})[cidr] = seconds
        print(f"{'occupancy':>9} " + " ".join(f"{c + ' ms':>18}" for c in latency_cidrs))
        for occupancy in sorted(table):
            cells = [table[occupancy].get(c) for c in latency_cidrs]
            print(
                f"{occupancy:>9} "
                + " ".join(f"{'':>18}" if v is None else f"{v * 1000:>18.1f}" for v in cells)
            )

        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "nautobot_version": peer.version,
                        "workers": peer.workers,
                        "setup_seconds": peer.setup_seconds,
                        "setup_steps": peer.setup_steps,
                        "allocations": alloc_rows,
                        "next_free_latency": {k: [[o, s] for o, s in v] for k, v in series.items()},
                    },
                    indent=2,
                )
            )
    print("\nstopped web server, redis and postgres", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
