"""OpenStack Placement as a benchmark peer for fuyun's scheduler.

Why this exists: Nova does not pick hosts itself; it asks Placement for allocation candidates
and then claims one with ``PUT /allocations/<consumer>``.  That two-call loop is the
production baseline our scheduler is compared against, so we run the real thing
(``openstack-placement`` from PyPI) rather than a model of it.

Why set-up is separate from measurement: installing Placement and registering thousands of
resource providers takes minutes (providers load at tens per second through the API), while a
measurement takes seconds.  :func:`ensure_placement` caches everything under
``benchmarks/.cache/placement`` (gitignored): the venv, and one database per host count with a
marker recording how many hosts it holds.  A second call only starts the processes.

Why PostgreSQL and not SQLite: ``placement-manage db sync`` does accept SQLite, but Placement
opens deferred transactions, so two concurrent writers (two loader threads, or two Nova clients
claiming at once) fail with ``database is locked`` -> HTTP 500, even in WAL mode.  A private
PostgreSQL cluster (the machine's own ``postgres`` binary, run as a child process on a
loopback port, durability off like fuyun's test cluster) has no such limit and is a backend
Placement supports upstream.

Everything listens on 127.0.0.1 only.  Both servers are children of the harness: killed by
:meth:`PlacementPeer.stop`, at interpreter exit, and by the kernel if the harness dies.

Run ``python benchmarks/peers/placement.py [--big]`` for the standard comparison table.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import itertools
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

import httpx

#: Pinned so numbers stay comparable between sessions; the cached venv is rebuilt when it changes.
PLACEMENT_REQUIREMENTS = ("openstack-placement==16.0.0", "gunicorn==27.0.1", "psycopg2-binary")
#: 1.36 has everything Nova's loop needs: ``limit`` on allocation_candidates (1.16), the
#: ``mappings`` key (1.34) and ``consumer_generation``/``project_id``/``user_id`` on PUT (1.28).
MICROVERSION = "placement 1.36"
HEADERS = {
    "X-Auth-Token": "admin",  # noauth2 makes any token an admin in project "admin"
    "OpenStack-API-Version": MICROVERSION,
    "Accept": "application/json",
}
#: Anchored at the repository, not the working directory, so every caller shares one cache.
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "placement"
PG_BIN_CANDIDATES = tuple(f"/usr/lib/postgresql/{v}/bin" for v in (17, 16, 15))
#: Deterministic provider UUIDs let a resumed load recognise hosts it already created.
HOST_NAMESPACE = uuid.UUID("6f1c1f8e-8a43-4d1e-9a55-3c2f0b9c7a10")
#: One hypervisor as the task defines it: 12 cores overcommitted 4x, 96 GiB, 2 TB.
INVENTORY: dict[str, dict[str, Any]] = {
    "VCPU": {"total": 12, "allocation_ratio": 4.0},
    "MEMORY_MB": {"total": 98304},
    "DISK_GB": {"total": 2000},
}
LOAD_CHUNK = 250  # the marker is rewritten after every chunk, so an interrupted load resumes
READY_TIMEOUT_S = 120.0


class Flavor(NamedTuple):
    """A Nova flavor reduced to what Placement sees of it."""

    vcpus: int = 1
    ram_mb: int = 2048
    disk_gb: int = 20

    def resources(self) -> str:
        """The ``resources=`` query string Nova builds from a flavor."""
        return f"VCPU:{self.vcpus},MEMORY_MB:{self.ram_mb},DISK_GB:{self.disk_gb}"


def host_name(index: int) -> str:
    """``h00001`` … ``h10000``: stable names so every run sees the same providers."""
    return f"h{index:05d}"


def host_uuid(index: int) -> str:
    """Provider UUID derived from the name, so a half-done load can be resumed safely."""
    return str(uuid.uuid5(HOST_NAMESPACE, host_name(index)))


# --------------------------------------------------------------------------- processes


def _pdeathsig_hook(sig: int) -> Callable[[], None] | None:
    """A pre-exec hook that makes the child get *sig* when the harness dies: no orphans.

    libc is loaded here, in the parent, so the hook itself only makes one system call between
    fork and exec (nothing that could take a lock another thread held at fork time).
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, sig)  # PR_SET_PDEATHSIG

    return hook


def _stop_process(proc: subprocess.Popen[bytes], sig: int, grace: float = 30.0) -> None:
    """Send *sig* to *proc* (a session leader we started), then KILL what is left of its group.

    The group KILL makes sure no gunicorn worker outlives its master; it cannot hit anything
    else, as Linux does not reuse a number while a group still carries it.  (PostgreSQL
    backends leave the group but exit by themselves once the postmaster is gone.)
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree_cpu_seconds(root: int) -> float:
    """User+system CPU of *root* and all its live descendants, from /proc.

    Why: the benchmark machine is shared (2 cores), so wall-clock rates move with whatever
    else runs; server CPU per placement does not, and it is what a comparison should rest on.
    By parentage, not process group, because PostgreSQL backends each call setsid().
    """
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, ... 11 utime
            pid = int(stat.parent.name)
            parent[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
    total = 0
    for pid, spent in ticks.items():
        node = pid
        while node > 1 and node != root:
            node = parent.get(node, 0)
        if node == root:
            total += spent
    return total / tick


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a set-up command, surfacing its output when it fails (pip errors are the usual)."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}"
            f"\n{done.stderr[-4000:]}"
        )
    return done


def _wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], name: str, log: Path
) -> None:
    """Poll *ready* until it is true; fail fast with the log tail if *proc* died meanwhile."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited ({proc.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S}s; see {log}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class _Postgres:
    """A private PostgreSQL cluster in one data directory, run as our child process."""

    bin: Path
    datadir: Path
    user: str | None  # "postgres" when we are root (postgres refuses to run as root)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def version(self) -> str:
        # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> "15.18"
        return _run([str(self.bin / "postgres"), "--version"]).stdout.split()[2]

    def url(self, database: str = "placement") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, *sql: str, database: str = "placement") -> list[str]:
        """Run statements (each its own transaction, so VACUUM works); return output lines."""
        cmd = [str(self.bin / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
               "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]  # fmt: skip
        for statement in sql:
            cmd += ["-c", statement]
        return _run(cmd, timeout=600).stdout.splitlines()

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []}

    def initdb(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
        _run([str(self.bin / "initdb"), "-D", str(self.datadir), "-U", "postgres",
              "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
             **self._as_user())  # fmt: skip

    def start(self, log: Path) -> None:
        """Start ``postgres`` in the foreground (no pg_ctl daemon) and wait until it answers."""
        self.port = _free_port()
        cmd = [str(self.bin / "postgres"), "-D", str(self.datadir),
               "-c", "listen_addresses=127.0.0.1", "-c", f"port={self.port}",
               "-c", "unix_socket_directories=", "-c", "max_connections=200",
               # Throwaway benchmark data: we measure scheduling CPU, not the disk.
               "-c", "fsync=off", "-c", "synchronous_commit=off",
               "-c", "full_page_writes=off"]  # fmt: skip
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_pdeathsig_hook(signal.SIGINT),  # SIGINT = fast, clean shutdown
                **self._as_user(),
            )

        def answers() -> bool:
            try:
                self.psql("SELECT 1", database="postgres")
            except RuntimeError:
                return False
            return True

        _wait_until(answers, self.process, "postgres", log)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            _stop_process(proc, signal.SIGINT)


def _find_pg_bin() -> Path:
    for candidate in [os.environ.get("FUYUN_PG_BIN", ""), *PG_BIN_CANDIDATES]:
        if candidate and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    raise RuntimeError("no PostgreSQL server binaries: apt-get install postgresql")


# --------------------------------------------------------------------------- the peer


@dataclass
class PlacementPeer:
    """A running Placement API over a cached database; use as a context manager."""

    base_url: str
    hosts: int
    version: str
    workers: int
    threads: int
    setup_seconds: float
    load: dict[str, Any]
    db: str
    pg: _Postgres = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(repr=False, default=None)

    def client(self, timeout: float = 120.0) -> httpx.Client:
        """A client preset with the noauth2 token and microversion headers."""
        return httpx.Client(base_url=self.base_url, headers=HEADERS, timeout=timeout)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU used so far by the Placement server and by its PostgreSQL (all processes)."""
        return {
            "placement": _tree_cpu_seconds(self.process.pid) if self.process else 0.0,
            "postgres": _tree_cpu_seconds(self.pg.process.pid) if self.pg.process else 0.0,
        }

    def stop(self) -> None:
        """Stop the Placement server, then its PostgreSQL (idempotent)."""
        proc, self.process = self.process, None
        if proc is not None:
            _stop_process(proc, signal.SIGTERM, grace=10.0)
        self.pg.stop()

    def __enter__(self) -> PlacementPeer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- set-up


def _ensure_venv(cache_dir: Path) -> tuple[Path, str]:
    """Create the private venv once; Placement's dependency set must not touch fuyun's venv."""
    venv = cache_dir / "venv"
    marker = venv / ".fuyun-placement.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("requirements") == list(PLACEMENT_REQUIREMENTS):
            return venv, str(info["version"])
    shutil.rmtree(venv, ignore_errors=True)
    # The base interpreter, not fuyun's venv, so nothing of fuyun's environment leaks in.
    base_python = getattr(sys, "_base_executable", sys.executable)
    _run([base_python, "-m", "venv", str(venv)])
    # pip's cache goes inside our cache too, so set-up writes nowhere but cache_dir.
    env = {**os.environ, "PIP_CACHE_DIR": str((cache_dir / "pip-cache").resolve())}
    _run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check",
          *PLACEMENT_REQUIREMENTS], timeout=1800, env=env)  # fmt: skip
    version = _run(
        [str(venv / "bin/python"), "-c",
         "import importlib.metadata as m; print(m.version('openstack-placement'))"]
    ).stdout.strip()  # fmt: skip
    marker.write_text(json.dumps({"requirements": list(PLACEMENT_REQUIREMENTS),
                                  "version": version}))  # fmt: skip
    return venv, version


def _write_conf(db_dir: Path, url: str) -> None:
    """Minimal placement.conf: noauth2 so no Keystone is needed.  Rewritten on every start
    because the database port is picked afresh each time."""
    (db_dir / "placement.conf").write_text(
        "[DEFAULT]\n"
        "debug = false\n"
        "log_options = false\n"
        "[api]\n"
        "auth_strategy = noauth2\n"
        "[placement_database]\n"
        f"connection = {url}\n"
    )


def _read_marker(db_dir: Path) -> dict[str, Any]:
    marker = db_dir / "loaded.json"
    return json.loads(marker.read_text()) if marker.exists() else {"hosts": 0}


def _write_marker(db_dir: Path, data: dict[str, Any]) -> None:
    tmp = db_dir / "loaded.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(db_dir / "loaded.json")


def _seed_source(cache_dir: Path, hosts: int) -> tuple[int, Path] | None:
    """The biggest fully loaded, cleanly stopped smaller cluster, to copy instead of reloading.

    Only complete ones (marker equals the folder's host count), so no provider beyond *hosts*
    can sneak in; only stopped ones (no ``postmaster.pid``), since copying a live data
    directory is not safe.
    """
    best: tuple[int, Path] | None = None
    for marker in cache_dir.glob("db-*/loaded.json"):
        folder = marker.parent
        loaded = int(json.loads(marker.read_text()).get("hosts", 0))
        complete = folder.name == f"db-{loaded}" and (folder / "schema.ok").exists()
        stopped = not (folder / "pgdata/postmaster.pid").exists()
        if complete and stopped and 0 < loaded <= hosts and (best is None or loaded > best[0]):
            best = (loaded, folder)
    return best


def _prepare_db(venv: Path, cache_dir: Path, db_dir: Path, hosts: int) -> tuple[_Postgres, int]:
    """Start this host count's cluster, creating (or seeding) it first if needed.

    Returns the running cluster and how many hosts its database already holds.
    """
    user = "postgres" if os.geteuid() == 0 else None
    pg = _Postgres(bin=_find_pg_bin(), datadir=(db_dir / "pgdata").resolve(), user=user)
    log = db_dir / "postgres.log"
    if (db_dir / "schema.ok").exists() and (pg.datadir / "PG_VERSION").exists():
        pg.start(log)
        return pg, int(_read_marker(db_dir)["hosts"])
    shutil.rmtree(db_dir, ignore_errors=True)
    db_dir.mkdir(parents=True)
    seed = _seed_source(cache_dir, hosts)
    try:
        if seed is not None:
            # cp -a keeps the postgres ownership that shutil.copytree would lose.
            _run(["cp", "-a", str(seed[1] / "pgdata"), str(pg.datadir)])
            pg.start(log)
        else:
            pg.initdb()
            pg.start(log)
            pg.psql("CREATE DATABASE placement", database="postgres")
            _write_conf(db_dir, pg.url())
            _run([str(venv / "bin/placement-manage"), "--config-file",
                  str(db_dir / "placement.conf"), "db", "sync"])  # fmt: skip
    except BaseException:
        pg.stop()
        raise
    loaded = seed[0] if seed else 0
    _write_marker(db_dir, {"hosts": loaded, "seeded_from": loaded})
    (db_dir / "schema.ok").write_text("ok\n")
    return pg, loaded


def _start_server(
    venv: Path, db_dir: Path, workers: int, threads: int
) -> tuple[subprocess.Popen[bytes], str]:
    """Serve Placement's WSGI app with gunicorn (gthread) on a free loopback port.

    gunicorn because Placement 16 ships no ``placement-api`` script any more, and a single
    ``wsgiref`` thread would make the peer look slower than a real deployment.  Polls the API
    until it answers instead of sleeping for a guessed time.
    """
    port = _free_port()
    env = {**os.environ, "OS_PLACEMENT_CONFIG_DIR": str(db_dir.resolve())}
    env.pop("PYTHONPATH", None)
    log = db_dir / "server.log"
    cmd = [
        str(venv / "bin/gunicorn"),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread",
        "--timeout", "300",
        "--graceful-timeout", "5",
        "--no-control-socket",  # gunicorn 27 would otherwise create ~/.gunicorn/gunicorn.ctl
        "--chdir", str(db_dir.resolve()),
        "placement.wsgi.api:application",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_pdeathsig_hook(signal.SIGTERM),
        )
    base_url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=5) as client:

        def answers() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return client.get("/resource_providers?name=h00000").status_code == 200
            return False

        try:
            _wait_until(answers, proc, "placement (gunicorn)", log)
        except BaseException:
            _stop_process(proc, signal.SIGTERM, grace=10.0)
            raise
    return proc, base_url


def _add_host(client: httpx.Client, index: int) -> None:
    """Register one compute node and its inventory, tolerating a half-done earlier attempt."""
    uid = host_uuid(index)
    resp = client.post("/resource_providers", json={"name": host_name(index), "uuid": uid})
    if resp.status_code == 409:  # created by an interrupted earlier load
        resp = client.get(f"/resource_providers/{uid}")
    resp.raise_for_status()
    generation = resp.json()["generation"]
    body = {"resource_provider_generation": generation, "inventories": INVENTORY}
    client.put(f"/resource_providers/{uid}/inventories", json=body).raise_for_status()


def _add_hosts(client: httpx.Client, indices: list[int]) -> None:
    for index in indices:
        _add_host(client, index)


def _load_hosts(
    peer: PlacementPeer, db_dir: Path, first: int, last: int, loaders: int
) -> dict[str, Any]:
    """Add hosts ``first..last`` through the API with *loaders* threads, chunk by chunk.

    Through the API rather than SQL so the rows are exactly what Nova's resource tracker would
    have produced.  ANALYZE at the end so the planner's statistics do not depend on when
    autovacuum last looked at the tables.
    """
    clients = [peer.client() for _ in range(loaders)]
    marker = _read_marker(db_dir)
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(loaders) as pool:
            for lo in range(first, last + 1, LOAD_CHUNK):
                hi = min(lo + LOAD_CHUNK - 1, last)
                indices = list(range(lo, hi + 1))
                shards = [indices[i::loaders] for i in range(loaders)]
                jobs = [
                    pool.submit(_add_hosts, client, shard)
                    for client, shard in zip(clients, shards, strict=True)
                ]
                for job in jobs:
                    job.result()
                marker["hosts"] = hi
                _write_marker(db_dir, marker)
    finally:
        for client in clients:
            client.close()
    seconds = time.perf_counter() - started
    peer.pg.psql("ANALYZE")
    added = last - first + 1
    stats = {"added": added, "seconds": round(seconds, 2),
             "providers_per_s": round(added / seconds, 1) if seconds else None}  # fmt: skip
    marker.setdefault("loads", []).append({**stats, "loaders": loaders})
    _write_marker(db_dir, marker)
    return stats


def ensure_placement(
    cache_dir: Path = DEFAULT_CACHE,
    hosts: int = 1000,
    *,
    workers: int = 2,
    threads: int = 4,
    loaders: int = 4,
) -> PlacementPeer:
    """Return a running Placement with exactly *hosts* empty compute nodes.

    Idempotent and cached: the venv and the per-host-count cluster survive between calls, only
    missing hosts are added, and allocations left by an earlier run are wiped.  Two gunicorn
    workers because the machine has two cores and building candidates is CPU-bound Python;
    a few threads each so a worker waiting on PostgreSQL does not idle its core.
    """
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    venv, version = _ensure_venv(cache_dir)
    db_dir = cache_dir / f"db-{hosts}"
    pg, loaded = _prepare_db(venv, cache_dir, db_dir, hosts)
    peer = PlacementPeer(
        base_url="",
        hosts=hosts,
        version=version,
        workers=workers,
        threads=threads,
        setup_seconds=0.0,
        load={"added": 0, "already": loaded},
        db=f"PostgreSQL {pg.version} (private cluster, fsync off), {pg.datadir}",
        pg=pg,
    )
    atexit.register(peer.stop)
    try:
        if loaded > hosts:
            raise RuntimeError(f"{db_dir} holds {loaded} hosts, more than {hosts}")
        _write_conf(db_dir, pg.url())
        peer.process, peer.base_url = _start_server(venv, db_dir, workers, threads)
        if loaded < hosts:
            peer.load = {**_load_hosts(peer, db_dir, loaded + 1, hosts, loaders), "already": loaded}
        reset_allocations(peer)
        _check_hosts(peer)
    except BaseException:
        peer.stop()
        raise
    peer.setup_seconds = round(time.perf_counter() - started, 2)
    return peer


def _check_hosts(peer: PlacementPeer) -> None:
    """Fail loudly if the cached database and the marker disagree (e.g. a hand-edited cache)."""
    count = int(peer.pg.psql("SELECT COUNT(DISTINCT resource_provider_id) FROM inventories")[0])
    if count != peer.hosts:
        raise RuntimeError(f"{peer.pg.datadir} has {count} hosts, expected {peer.hosts}")


def reset_allocations(peer: PlacementPeer) -> dict[str, Any]:
    """Remove every allocation and consumer so the next run starts on empty hosts.

    Done in SQL rather than one ``DELETE /allocations/<uuid>`` per consumer: milliseconds
    instead of seconds, and it also clears consumers left by a crashed run.  Placement keeps
    no allocation state in memory, and provider generations only need to keep increasing, so
    the server stays up.  VACUUM so every run sees the same, compact tables.
    """
    started = time.perf_counter()
    out = peer.pg.psql(
        "DELETE FROM allocations",
        "DELETE FROM consumers",
        "VACUUM (ANALYZE) allocations, consumers, resource_providers",
    )
    deleted = int(out[0].split()[-1]) if out and out[0].startswith("DELETE") else 0
    return {"allocations_deleted": deleted, "seconds": round(time.perf_counter() - started, 3)}


# --------------------------------------------------------------------------- measurement


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile; enough for a few hundred samples."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def run_nova_loop(
    peer: PlacementPeer,
    vms: int,
    clients: int,
    flavor: Flavor = Flavor(),  # immutable NamedTuple, safe as a default
    *,
    limit: int = 1000,
    max_attempts: int = 10,
    pick: Literal["first", "random"] = "first",
) -> dict[str, Any]:
    """Place *vms* instances the way nova-scheduler does, from *clients* concurrent threads.

    Per VM: ``GET /allocation_candidates`` (Nova's default ``max_placement_results`` is 1000),
    claim the first candidate with ``PUT /allocations/<new uuid>``, and on a 409 (another
    client took the capacity first) start over with a fresh GET.  Latency is per placement,
    first GET to successful PUT, retries included.  ``pick="random"`` imitates Nova's
    ``host_subset_size`` spreading, to separate Placement's cost from claim contention.

    Besides wall-clock rates it reports server CPU per placement (Placement and PostgreSQL
    processes) and the load average, because the machine may be shared with other work.
    """
    query = {"resources": flavor.resources(), "limit": str(limit)}
    project_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    tickets = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    get_s: list[float] = []
    put_s: list[float] = []
    counts = {"conflicts_retried": 0, "failures": 0, "no_valid_host": 0}
    errors: list[str] = []
    ready = threading.Barrier(clients + 1)
    chooser = random.Random(0)

    def place(client: httpx.Client) -> None:
        consumer = str(uuid.uuid4())
        t0 = time.perf_counter()
        for _ in range(max_attempts):
            t1 = time.perf_counter()
            resp = client.get("/allocation_candidates", params=query)
            t2 = time.perf_counter()
            if resp.status_code != 200:
                with lock:
                    counts["failures"] += 1
                    errors.append(f"GET {resp.status_code}: {resp.text[:200]}")
                return
            requests_ = resp.json()["allocation_requests"]
            if not requests_:
                with lock:
                    counts["failures"] += 1
                    counts["no_valid_host"] += 1
                return
            body = {
                "allocations": (requests_[0] if pick == "first" else chooser.choice(requests_))[
                    "allocations"
                ],
                "project_id": project_id,
                "user_id": user_id,
                "consumer_generation": None,
            }
            resp = client.put(f"/allocations/{consumer}", json=body)
            t3 = time.perf_counter()
            with lock:
                get_s.append(t2 - t1)
                put_s.append(t3 - t2)
                if resp.status_code == 204:
                    latencies.append(t3 - t0)
                    return
                if resp.status_code == 409:
                    counts["conflicts_retried"] += 1
                    continue
                counts["failures"] += 1
                errors.append(f"PUT {resp.status_code}: {resp.text[:200]}")
                return
        with lock:
            counts["failures"] += 1
            errors.append(f"gave up after {max_attempts} conflicts")

    def worker() -> None:
        with peer.client() as client:
            ready.wait()
            while next(tickets) < vms:
                place(client)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    load_before = os.getloadavg()[0]
    cpu_before, client_cpu_before = peer.cpu_seconds(), time.process_time()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu_after, client_cpu = peer.cpu_seconds(), time.process_time() - client_cpu_before
    cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
    latencies.sort()
    ms = 1000.0
    per = ms / len(latencies) if latencies else float("nan")
    return {
        "hosts": peer.hosts,
        "clients": clients,
        "vms": vms,
        "placed": len(latencies),
        "seconds": round(seconds, 2),
        "placements_per_s": round(len(latencies) / seconds, 2) if seconds else 0.0,
        "p50_ms": round(_percentile(latencies, 50) * ms, 1),
        "p99_ms": round(_percentile(latencies, 99) * ms, 1),
        "mean_get_ms": round(sum(get_s) / len(get_s) * ms, 1) if get_s else None,
        "mean_put_ms": round(sum(put_s) / len(put_s) * ms, 1) if put_s else None,
        **counts,
        "server_cpu_ms_per_placement": round((cpu["placement"] + cpu["postgres"]) * per, 1),
        "placement_cpu_ms_per_placement": round(cpu["placement"] * per, 1),
        "postgres_cpu_ms_per_placement": round(cpu["postgres"] * per, 1),
        "client_cpu_ms_per_placement": round(client_cpu * per, 1),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "pick": pick,
        "errors": errors[:5],
    }


# --------------------------------------------------------------------------- CLI


def _warm(peer: PlacementPeer, flavor: Flavor = Flavor()) -> None:
    """A few untimed candidate queries so every worker has imported and cached what it lazily
    loads; Nova's scheduler talks to a long-running Placement, never a cold one."""
    query = {"resources": flavor.resources(), "limit": "1000"}
    with ThreadPoolExecutor(peer.workers * 2) as pool:

        def one(_: int) -> None:
            with peer.client() as client:
                client.get("/allocation_candidates", params=query).raise_for_status()

        list(pool.map(one, range(peer.workers * 2)))


def main(argv: list[str] | None = None) -> int:
    """Set up (cached) and run the 1- and 4-client Nova loops; print one row per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="also run at 10,000 hosts")
    parser.add_argument("--vms", type=int, default=200, help="VMs per run (default 200)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--pick", choices=("first", "random"), default="first")
    parser.add_argument("--json", action="store_true", help="print raw results as JSON too")
    args = parser.parse_args(argv)

    host_counts = (1000, 10000) if args.big else (1000,)
    rows: list[dict[str, Any]] = []
    for hosts in host_counts:
        with ensure_placement(args.cache_dir, hosts) as peer:
            load = peer.load
            rate = f", {load['providers_per_s']} providers/s" if load.get("added") else ""
            print(
                f"placement {peer.version} on {peer.db}; {hosts} hosts ready in "
                f"{peer.setup_seconds}s (added {load['added']}{rate}); "
                f"gunicorn {peer.workers}x{peer.threads} at {peer.base_url}",
                flush=True,
            )
            _warm(peer)
            for clients in args.clients:
                reset_allocations(peer)
                result = run_nova_loop(peer, args.vms, clients, pick=args.pick)
                rows.append(result)
                if result["errors"]:
                    print(f"  errors: {result['errors']}", file=sys.stderr)
            reset_allocations(peer)

    print(
        f"{'hosts':>6} {'clients':>7} {'placed':>6} {'place/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'GET ms':>7} {'PUT ms':>7} {'409s':>5} {'fail':>5} "
        f"{'srvCPU ms':>9} {'load1m':>11}"
    )
    for r in rows:
        print(
            f"{r['hosts']:>6} {r['clients']:>7} {r['placed']:>6} {r['placements_per_s']:>8} "
            f"{r['p50_ms']:>8} {r['p99_ms']:>8} {r['mean_get_ms']:>7} {r['mean_put_ms']:>7} "
            f"{r['conflicts_retried']:>5} {r['failures']:>5} "
            f"{r['server_cpu_ms_per_placement']:>9} {'->'.join(map(str, r['loadavg_1m'])):>11}"
        )
    print(
        f"(srvCPU = Placement+PostgreSQL CPU per placement; load1m = load average before->after "
        f"on {os.cpu_count()} cores: above that, other work was competing and rates are low)"
    )
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0 if all(r["failures"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
