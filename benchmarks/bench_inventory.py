"""Inventory at the seed's scale: start-up and host listing on the ``tencent-2010`` fabric.

Claims backed here:

1. ``fuyun serve --fabric tencent-2010`` (5 sites, 50 modules, 2,600 switches, 100,000 hosts)
   starts - migrates, loads the whole fabric and answers ``GET /api/v1/health`` - in under a
   minute on a 2-core machine; a restart on the already-seeded store is much faster.
2. Listing hosts stays fast with filters (module + state, ToR, site, name prefix), and keyset
   pagination costs the same on the last page of 100,000 hosts as on the first.

What is measured, all in one run and against 127.0.0.1 only:

* Wall time from spawning ``fuyun serve`` to the first ``200`` from ``/api/v1/health`` (polled
  every 50 ms), for a cold start on an empty SQLite file and a warm restart on the same file,
  with the moment the operator-token line appeared on stdout and the server's own "ready in"
  figure as a breakdown.  Peak RSS is read from ``/proc/<pid>/status`` (``VmHWM``).
* Latency p50/p99 of ``GET /api/v1/hosts`` with each filter (one warm-up, then N requests over
  one keep-alive connection), and a walk of all 100,000 hosts in pages of 1,000 following
  ``next_cursor``: ms per page at the start against ms per page at the end.
* Baselines measured in the same run on the same file, opened read-only with the stdlib
  ``sqlite3``: OFFSET pagination against keyset pagination at depths 0, 50,000 and 99,000; the
  filtered listings with and without their index (``NOT INDEXED``); and the name-prefix filter
  as the API phrases it (``LIKE ? || '%'``) against an index-friendly range.

Benchmarks here report numbers and ratios; nothing is asserted about time.

Run (from the checkout)::

    .venv/bin/python benchmarks/bench_inventory.py [-n 200] [--postgres URL]

``--postgres URL`` (``postgresql+psycopg://user:pass@127.0.0.1:5432/db``) serves from that
database instead; give an empty database for a cold-start figure (an already seeded one makes
both starts warm).  The server gets a private temporary directory as its ``XDG_CONFIG_HOME``
and working directory, so the user's CLI credentials are left alone; it is stopped and the
directory removed at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
FUYUN = ROOT / ".venv" / "bin" / "fuyun"
FABRIC = "tencent-2010"
CLAIM_S = 60.0
PAGE = 1000
POLL_S = 0.05
START_TIMEOUT_S = 900.0
EDGE_PAGES = 5  # pages averaged at each end of the deep walk
EDGE_ROUNDS = 10  # alternating re-fetches of those pages
RAW_REPEATS = 21

TOKEN_RE = re.compile(r"operator token: (fyt_[A-Za-z0-9_\-]+)")
READY_RE = re.compile(r"\((\d+) hosts; ready in ([0-9.]+) s\)")


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    out_path: Path
    err_path: Path
    token: str = ""
    ready_s: float = 0.0  # spawn -> first 200 from /health
    token_line_s: float = 0.0  # spawn -> operator-token line seen on stdout
    self_reported_s: float | None = None  # the server's own "ready in X s" (after imports)
    hosts: int | None = None
    first_start: bool = False  # the admin password is printed on the very first start only

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory_kib(self) -> dict[str, int]:
        """``VmHWM`` (peak RSS) and ``VmRSS`` of the server process, in KiB."""
        found: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    found[key] = int(value.split()[0])
        return found

    def stop(self) -> None:
        """SIGTERM to the server's own process group, then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def start_server(workdir: Path, database_url: str, tag: str) -> Server:
    """Spawn ``fuyun serve`` and return once ``/api/v1/health`` answers 200."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        FUYUN_DATABASE_URL=database_url,
        XDG_CONFIG_HOME=str(workdir),
        PYTHONUNBUFFERED="1",  # the token line reaches the file at once
    )
    out_path, err_path = workdir / f"serve-{tag}.out", workdir / f"serve-{tag}.err"
    cmd = [str(FUYUN), "serve", "--fabric", FABRIC, "--port", str(port), "--host", "127.0.0.1"]
    base_url = f"http://127.0.0.1:{port}"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,  # a file, not a pipe: the access log must never block the server
            stderr=err,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    server = Server(proc=proc, base_url=base_url, out_path=out_path, err_path=err_path)
    try:
        with httpx.Client(base_url=base_url, timeout=2.0, trust_env=False) as client:
            while True:
                now = time.perf_counter() - started
                if not server.token:
                    text = out_path.read_text(errors="replace")
                    if match := TOKEN_RE.search(text):
                        server.token, server.token_line_s = match.group(1), now
                        if ready := READY_RE.search(text):
                            server.hosts = int(ready.group(1))
                            server.self_reported_s = float(ready.group(2))
                        server.first_start = "operator sign-in:" in text
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"fuyun serve exited with {proc.returncode}:\n{tail(err_path)}"
                    )
                if now > START_TIMEOUT_S:
                    raise RuntimeError(f"no healthy server after {START_TIMEOUT_S:.0f} s")
                try:
                    if client.get("/api/v1/health").status_code == 200:
                        server.ready_s = time.perf_counter() - started
                        break
                except httpx.TransportError:
                    pass
                time.sleep(POLL_S)
        deadline = time.monotonic() + 10
        while not server.token and time.monotonic() < deadline:
            if match := TOKEN_RE.search(out_path.read_text(errors="replace")):
                server.token = match.group(1)
            time.sleep(POLL_S)
        if not server.token:
            raise RuntimeError(f"no 'operator token:' line on stdout:\n{tail(out_path)}")
    except BaseException:
        server.stop()
        raise
    return server


# --------------------------------------------------------------------------- HTTP latency


@dataclass
class Latency:
    label: str
    query: str
    samples_ms: list[float]
    items: int
    errors: dict[int, int] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        if len(self.samples_ms) < 2:
            return self.samples_ms[0]
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[98]


def get_json(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, Any, int]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    body = response.content
    elapsed_ms = (time.perf_counter() - started) * 1000
    data = response.json() if response.status_code == 200 and body else None
    return elapsed_ms, data, response.status_code


def measure(client: httpx.Client, label: str, path: str, params: dict[str, Any], n: int) -> Latency:
    """One warm-up, then ``n`` sequential requests on the keep-alive connection."""
    _, data, _ = get_json(client, path, params)
    items = len(data["items"]) if isinstance(data, dict) and "items" in data else 0
    samples: list[float] = []
    errors: dict[int, int] = {}
    for _ in range(n):
        ms, _, status = get_json(client, path, params)
        samples.append(ms)
        if status != 200:
            errors[status] = errors.get(status, 0) + 1
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return Latency(label, query, samples, items, errors)


@dataclass
class Walk:
    page_ms: list[list[float]]  # one list per walk, one entry per page
    hosts_seen: int
    unique: int
    errors: dict[int, int]
    cursors: list[str | None]  # the cursor that asks for each page (None: the first page)

    def per_page(self) -> list[float]:
        """Per page position, the median over the walks."""
        return [statistics.median(col) for col in zip(*self.page_ms, strict=True)]

    @property
    def start_ms(self) -> float:
        return statistics.median(self.per_page()[:EDGE_PAGES])

    @property
    def end_ms(self) -> float:
        return statistics.median(self.per_page()[-EDGE_PAGES:])

    @property
    def total_s(self) -> float:
        return statistics.median(sum(w) for w in self.page_ms) / 1000


def deep_walk(client: httpx.Client, walks: int) -> Walk:
    """Follow ``next_cursor`` through every host, ``walks`` times (plus one warm-up walk)."""
    all_ms: list[list[float]] = []
    seen = unique = 0
    errors: dict[int, int] = {}
    cursors: list[str | None] = []
    for round_ in range(max(walks, 1) + 1):
        cursor: str | None = None
        cursors = []
        ms_list: list[float] = []
        ids: set[str] = set()
        count = 0
        while True:
            params: dict[str, Any] = {"limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            cursors.append(cursor)
            ms, data, status = get_json(client, "/api/v1/hosts", params)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1
                break
            ms_list.append(ms)
            count += len(data["items"])
            ids.update(item["id"] for item in data["items"])
            cursor = data["next_cursor"]
            if not cursor:
                break
        if round_ > 0:  # round 0 is the warm-up
            all_ms.append(ms_list)
        seen, unique = count, len(ids)
    if len({len(w) for w in all_ms}) != 1:  # a failed walk: keep what can be compared
        shortest = min(len(w) for w in all_ms)
        all_ms = [w[:shortest] for w in all_ms]
    return Walk(all_ms, seen, unique, errors, cursors)


def edge_pages(client: httpx.Client, walk: Walk, rounds: int) -> tuple[float, float]:
    """Median ms of the first and of the last EDGE_PAGES pages, fetched alternately.

    Re-fetching the pages by their cursors, first and last in turn, takes drift out of the
    comparison: in a walk the last pages are always fetched later than the first ones.
    """
    cursors = walk.cursors
    first, last = cursors[:EDGE_PAGES], cursors[-EDGE_PAGES:]
    first_ms: list[float] = []
    last_ms: list[float] = []
    for _ in range(rounds):
        for a, b in zip(first, last, strict=True):
            for cursor, sink in ((a, first_ms), (b, last_ms)):
                params: dict[str, Any] = {"limit": PAGE}
                if cursor:
                    params["cursor"] = cursor
                sink.append(get_json(client, "/api/v1/hosts", params)[0])
    return statistics.median(first_ms), statistics.median(last_ms)


# --------------------------------------------------------------------------- raw SQL baseline


class RawDb:
    """The store opened read-only outside fuyun, for the baselines (SQLite or PostgreSQL)."""

    def __init__(self, database_url: str):
        self.url = database_url
        self.dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
        self.conn: Any
        if self.dialect == "sqlite":
            path = database_url.removeprefix("sqlite:///")
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            import psycopg

            dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", database_url)
            self.conn = psycopg.connect(dsn, autocommit=True)
            self.conn.read_only = True

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self.dialect == "postgresql":
            sql = sql.replace("%", "%%").replace("?", "%s").replace(" NOT INDEXED", "")
        cur = self.conn.cursor()
        cur.execute(sql, tuple(params))
        return list(cur.fetchall()) if cur.description is not None else []

    @contextlib.contextmanager
    def without_indexes(self) -> Iterator[None]:
        """PostgreSQL has no ``NOT INDEXED``: turn index paths off for the session instead."""
        if self.dialect != "postgresql":
            yield
            return
        knobs = ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan")
        for knob in knobs:
            self.rows(f"SET {knob} = off")
        try:
            yield
        finally:
            for knob in knobs:
                self.rows(f"SET {knob} = on")

    def plan(self, sql: str, params: Sequence[Any]) -> str:
        if self.dialect == "sqlite":
            return "; ".join(str(r[-1]) for r in self.rows(f"EXPLAIN QUERY PLAN {sql}", params))
        lines = [str(r[0]).strip() for r in self.rows(f"EXPLAIN {sql}", params)]
        scans = [line.split("  (cost")[0].removeprefix("->  ") for line in lines if "Scan" in line]
        return "; ".join(scans or lines[:1])

    def close(self) -> None:
        self.conn.close()


def time_sql(db: RawDb, sql: str, params: Sequence[Any] = (), repeats: int = RAW_REPEATS) -> float:
    """Median ms to run ``sql`` and fetch every row (one untimed warm-up)."""
    db.rows(sql, params)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        db.rows(sql, params)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


@dataclass
class DepthRow:
    depth: int
    offset_ms: float
    keyset_ms: float  # row-value comparison
    keyset_or_ms: float  # the OR form fuyun's paginate() emits
    plans: dict[str, str] = field(default_factory=dict)


def offset_vs_keyset(db: RawDb, depths: Sequence[int]) -> list[DepthRow]:
    out = []
    for depth in depths:
        offset_sql = f"SELECT * FROM hosts ORDER BY name, id LIMIT {PAGE} OFFSET {depth}"
        offset_ms = time_sql(db, offset_sql)
        plans: dict[str, str] = {}
        if depth == 0:
            keyset_ms = time_sql(db, f"SELECT * FROM hosts ORDER BY name, id LIMIT {PAGE}")
            keyset_or_ms = keyset_ms
        else:
            last = db.rows(
                "SELECT name, id FROM hosts ORDER BY name, id LIMIT 1 OFFSET ?", [depth - 1]
            )[0]
            keyset_sql = (
                f"SELECT * FROM hosts WHERE (name, id) > (?, ?) ORDER BY name, id LIMIT {PAGE}"
            )
            keyset_ms = time_sql(db, keyset_sql, list(last))
            or_sql = (
                "SELECT * FROM hosts WHERE name > ? OR (name = ? AND id > ?) "
                f"ORDER BY name, id LIMIT {PAGE}"
            )
            or_params = [last[0], last[0], last[1]]
            keyset_or_ms = time_sql(db, or_sql, or_params)
            plans = {
                "OFFSET": db.plan(offset_sql, []),
                "keyset": db.plan(keyset_sql, list(last)),
                "keyset, OR form": db.plan(or_sql, or_params),
            }
        out.append(DepthRow(depth, offset_ms, keyset_ms, keyset_or_ms, plans))
    return out


@dataclass
class IndexRow:
    label: str
    indexed_ms: float
    plain_ms: float  # without the index / the unoptimised form
    plan: str
    plain_plan: str


def ref_id(db: RawDb, table: str, name: str) -> Any:
    return db.rows(f"SELECT id FROM {table} WHERE name = ?", [name])[0][0]


def index_baselines(db: RawDb, module: str, tor: str, site: str, prefix: str) -> list[IndexRow]:
    """First page (100 + 1 rows, as the API asks) of each filter, with and without its index."""
    limit = 101
    cases: list[tuple[str, str, list[Any]]] = [
        (
            f"module={module}&state=active",
            "module_id = ? AND state = 'active'",
            [ref_id(db, "modules", module)],
        ),
        (f"tor={tor}", "tor_id = ?", [ref_id(db, "switches", tor)]),
        (f"site={site}", "site_id = ?", [ref_id(db, "sites", site)]),
    ]
    out = []
    for label, where, params in cases:
        sql = f"SELECT * FROM hosts WHERE {where} ORDER BY name, id LIMIT {limit}"
        plain = f"SELECT * FROM hosts NOT INDEXED WHERE {where} ORDER BY name, id LIMIT {limit}"
        indexed_ms = time_sql(db, sql, params)
        with db.without_indexes():
            plain_ms = time_sql(db, plain, params, repeats=5)
            plain_plan = db.plan(plain, params)
        out.append(IndexRow(label, indexed_ms, plain_ms, db.plan(sql, params), plain_plan))
    # name_prefix: the API's form (LIKE on a concatenated parameter, which the planner cannot
    # turn into an index range, so it walks the name index from the start) against a range.
    like = (
        f"SELECT * FROM hosts WHERE name LIKE ? || '%' ESCAPE '/' ORDER BY name, id LIMIT {limit}"
    )
    ranged = f"SELECT * FROM hosts WHERE name >= ? AND name < ? ORDER BY name, id LIMIT {limit}"
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    out.append(
        IndexRow(
            f"name_prefix={prefix} (range vs LIKE)",
            time_sql(db, ranged, [prefix, upper]),
            time_sql(db, like, [prefix], repeats=5),
            db.plan(ranged, [prefix, upper]),
            db.plan(like, [prefix]),
        )
    )
    return out


# --------------------------------------------------------------------------- report


def fmt_ms(ms: float) -> str:
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (readable as plain text, pasteable into docs/benchmarks.md)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = [i > 0 for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else "-" * (w + 2)
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.0f} MiB"


# --------------------------------------------------------------------------- main


def pick_names(client: httpx.Client) -> dict[str, str]:
    """Real names from the live inventory: first and last site, a middle module and ToR."""

    def names(path: str, **params: Any) -> list[str]:
        response = client.get(path, params={"limit": PAGE, **params})
        response.raise_for_status()
        return [item["name"] for item in response.json()["items"]]

    sites = names("/api/v1/sites")
    modules = names("/api/v1/modules", site=sites[len(sites) // 2])
    module = modules[len(modules) // 2]
    tors = names("/api/v1/switches", module=module, role="tor")
    hosts_first = names("/api/v1/hosts", limit=1)
    return {
        "site_first": sites[0],
        "site_last": sites[-1],
        "module": module,
        "tor": tors[len(tors) // 2],
        "prefix_early": hosts_first[0].rsplit("-", 2)[0] + "-",  # e.g. bj1-m01-
        "prefix_late": f"{sites[-1]}-m{len(modules):02d}-",  # the last module of the last site
    }


def run(args: argparse.Namespace, workdir: Path) -> None:
    database_url = args.postgres or f"sqlite:///{workdir / 'fuyun.db'}"
    dialect = "postgresql" if args.postgres else "sqlite"
    print(f"# fuyun serve --fabric {FABRIC} on {dialect}; workdir {workdir}", flush=True)
    load_before = os.getloadavg()

    cold = start_server(workdir, database_url, "cold")
    cold_mem = cold.memory_kib()
    print(f"cold start: healthy after {cold.ready_s:.2f} s ({cold.hosts} hosts)", flush=True)
    cold.stop()

    warm = start_server(workdir, database_url, "warm")
    print(f"warm start: healthy after {warm.ready_s:.2f} s", flush=True)
    warm_mem_at_ready = warm.memory_kib()

    latencies: list[Latency] = []
    try:
        headers = {"Authorization": f"Bearer {warm.token}"}
        with httpx.Client(
            base_url=warm.base_url, headers=headers, timeout=60.0, trust_env=False
        ) as client:
            picked = pick_names(client)
            n = args.requests
            cases: list[tuple[str, str, dict[str, Any]]] = [
                ("health (HTTP floor)", "/api/v1/health", {}),
                ("first page", "/api/v1/hosts", {"limit": 100}),
                (
                    "module + state",
                    "/api/v1/hosts",
                    {"module": picked["module"], "state": "active", "limit": 100},
                ),
                ("tor", "/api/v1/hosts", {"tor": picked["tor"], "limit": 100}),
                ("site (first)", "/api/v1/hosts", {"site": picked["site_first"], "limit": 100}),
                ("site (last)", "/api/v1/hosts", {"site": picked["site_last"], "limit": 100}),
                (
                    "name_prefix (early)",
                    "/api/v1/hosts",
                    {"name_prefix": picked["prefix_early"], "limit": 100},
                ),
                (
                    "name_prefix (late)",
                    "/api/v1/hosts",
                    {"name_prefix": picked["prefix_late"], "limit": 100},
                ),
            ]
            for label, path, params in cases:
                latencies.append(measure(client, label, path, params, n))
                print(f"  measured {label}: p50 {latencies[-1].p50:.2f} ms", flush=True)
            walk = deep_walk(client, args.walks)
            print(f"  deep walk: {walk.total_s:.2f} s per walk", flush=True)
            edge_first, edge_last = edge_pages(client, walk, EDGE_ROUNDS)
        raw = RawDb(database_url)
        try:
            depths = offset_vs_keyset(raw, [0, 50_000, 99_000])
            indexes = index_baselines(
                raw, picked["module"], picked["tor"], picked["site_last"], picked["prefix_late"]
            )
        finally:
            raw.close()
        warm_mem = warm.memory_kib()
    finally:
        warm.stop()
    load_after = os.getloadavg()

    # ---- start-up
    print()
    print(
        f"machine: {os.cpu_count()} cores, load average (1 min) {load_before[0]:.2f} at start, "
        f"{load_after[0]:.2f} at end; Python {sys.version.split()[0]}"
    )
    print()
    print(f"## Start-up: fuyun serve --fabric {FABRIC} ({dialect}, {cold.hosts} hosts)")
    print()
    rows = [
        [
            "cold start (empty store): spawn -> health 200",
            f"{cold.ready_s:.2f} s",
            f"{cold.ready_s / CLAIM_S:.2f} of the {CLAIM_S:.0f} s claim",
        ],
        ["  spawn -> operator-token line on stdout", f"{cold.token_line_s:.2f} s", ""],
        [
            "  of which the server's own 'ready in' (migrate + load + token)",
            f"{cold.self_reported_s or 0:.2f} s",
            f"{(cold.self_reported_s or 0) / cold.ready_s:.2f} of cold start",
        ],
        [
            "warm start (seeded store): spawn -> health 200",
            f"{warm.ready_s:.2f} s",
            f"{warm.ready_s / cold.ready_s:.2f} x cold "
            f"(cold is {cold.ready_s / warm.ready_s:.1f}x warm)",
        ],
        ["  spawn -> operator-token line on stdout", f"{warm.token_line_s:.2f} s", ""],
        [
            "  of which the server's own 'ready in'",
            f"{warm.self_reported_s or 0:.2f} s",
            "",
        ],
        [
            "  before the server's clock starts (interpreter + imports)",
            f"{warm.token_line_s - (warm.self_reported_s or 0):.2f} s",
            f"{(warm.token_line_s - (warm.self_reported_s or 0)) / warm.ready_s:.2f} of warm start",
        ],
        ["peak RSS, cold start (VmHWM at health 200)", mib(cold_mem.get("VmHWM")), ""],
        ["peak RSS, warm start (VmHWM at health 200)", mib(warm_mem_at_ready.get("VmHWM")), ""],
        [
            "peak RSS, warm server after all listings (VmHWM)",
            mib(warm_mem.get("VmHWM")),
            f"RSS now {mib(warm_mem.get('VmRSS'))}",
        ],
    ]
    if not cold.first_start:
        rows.append(["note: the store was already seeded, so the 'cold' start was warm", "", ""])
    print(table(["what", "value", "ratio"], rows))

    # ---- listings
    first = next(lat for lat in latencies if lat.label == "first page")
    print()
    print(f"## GET /api/v1/hosts: 1 warm-up + {args.requests} requests each, keep-alive")
    print()
    rows = []
    for lat in latencies:
        errors = ", ".join(f"{k}x{v}" for k, v in sorted(lat.errors.items())) or "-"
        rows.append(
            [
                lat.label,
                lat.query or "-",
                str(lat.items),
                fmt_ms(lat.p50),
                fmt_ms(lat.p99),
                f"{lat.p50 / first.p50:.2f}",
                errors,
            ]
        )
    print(
        table(["case", "query", "items", "p50 ms", "p99 ms", "p50 / first page", "non-200"], rows)
    )

    # ---- deep pagination
    per_page = walk.per_page()
    api_depths = {  # HTTP ms per page, median of the EDGE_PAGES pages around that depth
        d.depth: statistics.median(window)
        for d in depths
        if (window := per_page[max(0, d.depth // PAGE - EDGE_PAGES // 2) :][:EDGE_PAGES])
    }
    print()
    print(
        f"## Deep pagination: every host in pages of {PAGE} via next_cursor "
        f"({args.walks} walks after a warm-up; per-page median over walks)"
    )
    print()
    walk_errors = ", ".join(f"{k}x{v}" for k, v in sorted(walk.errors.items())) or "-"
    print(
        table(
            ["what", "value"],
            [
                ["pages per walk", str(len(per_page))],
                ["hosts returned / unique", f"{walk.hosts_seen} / {walk.unique}"],
                ["non-200 answers", walk_errors],
                [f"ms per page, first {EDGE_PAGES} pages (median)", fmt_ms(walk.start_ms)],
                [f"ms per page, last {EDGE_PAGES} pages (median)", fmt_ms(walk.end_ms)],
                ["last / first (in walk order)", f"{walk.end_ms / walk.start_ms:.2f}"],
                [
                    f"ms per page, first {EDGE_PAGES} / last {EDGE_PAGES} pages, "
                    f"re-fetched alternately x{EDGE_ROUNDS} (median)",
                    f"{fmt_ms(edge_first)} / {fmt_ms(edge_last)}",
                ],
                ["last / first (alternating)", f"{edge_last / edge_first:.2f}"],
                [
                    "slowest page / median page",
                    f"{max(per_page) / statistics.median(per_page):.2f}",
                ],
                ["whole walk", f"{walk.total_s:.2f} s"],
            ],
        )
    )

    # ---- raw SQL baselines
    print()
    print(
        f"## Baseline: raw SQL on the same {dialect} store, read-only, page of {PAGE} "
        f"(median of {RAW_REPEATS}); API = HTTP ms per page around that depth in the walk"
    )
    print()
    rows = []
    for d in depths:
        api = api_depths.get(d.depth)
        rows.append(
            [
                f"{d.depth:,}",
                fmt_ms(d.offset_ms),
                fmt_ms(d.keyset_ms),
                fmt_ms(d.keyset_or_ms),
                f"{d.offset_ms / d.keyset_ms:.1f}",
                fmt_ms(api) if api is not None else "n/a",
                f"{api / d.keyset_or_ms:.1f}" if api is not None else "n/a",
            ]
        )
    print(
        table(
            [
                "depth (rows skipped)",
                "OFFSET ms",
                "keyset (row value) ms",
                "keyset, OR form ms",
                "OFFSET / keyset",
                "API ms",
                "API / raw OR form",
            ],
            rows,
        )
    )
    deep, shallow = depths[-1], depths[0]
    print()
    print(
        f"OFFSET at {deep.depth:,} / OFFSET at 0: {deep.offset_ms / shallow.offset_ms:.1f}; "
        f"keyset at {deep.depth:,} / keyset at 0: {deep.keyset_ms / shallow.keyset_ms:.2f}; "
        f"OR form at {deep.depth:,} / at 0: {deep.keyset_or_ms / shallow.keyset_or_ms:.2f}"
    )
    for name, plan in deep.plans.items():
        print(f"- plan at {deep.depth:,}, {name}: {plan}")
    print()
    print("## Baseline: first filtered page (101 rows) in raw SQL, with and without the index")
    print()
    rows = [
        [
            r.label,
            fmt_ms(r.indexed_ms),
            fmt_ms(r.plain_ms),
            f"{r.plain_ms / r.indexed_ms:.1f}",
        ]
        for r in indexes
    ]
    print(table(["filter", "indexed ms", "no index / LIKE ms", "ratio"], rows))
    print()
    for r in indexes:
        print(f"- plan {r.label}: indexed: {r.plan} | without: {r.plain_plan}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", "--requests", type=int, default=200, help="requests per case")
    parser.add_argument("--walks", type=int, default=3, help="timed walks through all hosts")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="serve from this PostgreSQL database (postgresql+psycopg://...) instead of SQLite",
    )
    args = parser.parse_args(argv)
    if not FUYUN.exists():
        print(f"{FUYUN} is missing: run scripts/serve or scripts/test once", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="fuyun-bench-inventory-"))
    try:
        run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
