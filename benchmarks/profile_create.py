"""Where a VM's create cost goes: SQL statements, commits and CPU per VM through ``create_vms``.

Counts every statement and commit the service layer issues (SQLAlchemy engine events),
per VM and by kind, for requests of ``--count`` VMs with one NIC each on a fabric of the
same shape the Placement comparison uses; ``--cprofile`` prints the top functions too.
The figures are counts, not timings, so they do not depend on what else the machine runs
(CPU per VM is printed beside them for orientation).

    .venv/bin/python benchmarks/profile_create.py --hosts 2000 --requests 4 --count 500
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench_placement import BIG, FLAVOR, peer_params
from sqlalchemy import event

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.fabric.generator import generate
from fuyun.fabric.loader import load_into_store
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade

_KIND = re.compile(r"^\s*(\w+)(?:.*?\b(?:FROM|INTO|UPDATE)\s+\"?(\w+))?", re.S | re.I)


def kind(sql: str) -> str:
    """``SELECT hosts``, ``UPDATE switches``, ``INSERT ports``: verb and first table."""
    m = _KIND.match(sql)
    if not m:
        return sql[:30]
    verb = m.group(1).upper()
    table = m.group(2) or ""
    if verb == "UPDATE":
        table = sql.split()[1].strip('"')
    return f"{verb} {table}".strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=4, help="measured requests")
    parser.add_argument("--count", type=int, default=500, help="VMs per request")
    parser.add_argument("--cprofile", action="store_true", help="print the top 25 functions")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="fuyun-profile-create-"))
    url = f"sqlite:///{workdir / 'store.db'}"
    db = Database(url)
    settings = Settings(database_url=url)
    upgrade(db.engine)
    with db.write_session() as s:
        load_into_store(s, generate(peer_params(args.hosts)))
    driver = FakeComputeDriver()
    bootstrap(db, settings, driver, fabric="default")
    rt = Runtime(db, settings, driver)
    limits = {k: BIG for k in ("vms", "vcpus", "ram_mb", "ips", "bandwidth_mbps")}
    tenant = tenants.create_tenant(db, SYSTEM, name="prof", limits=limits)
    ctx = networks.Networking(db=db, settings=settings)
    cluster = rt.placement.scheduler().cluster
    module = min(cluster.modules.values(), key=lambda m: m.name)
    net = networks.create_network(
        ctx,
        SYSTEM,
        networks.NetworkRequest(name="n", prefix_len=16, module=module.name, tenant_id=tenant.id),
    ).id

    def create(i: int, count: int) -> int:
        req = vms.VmRequest(
            name=f"p{i}", flavor=FLAVOR, count=count, tenant_id=tenant.id, networks=(str(net),)
        )
        return len(vms.create_vms(rt, SYSTEM, req).vms)

    create(0, 3)  # warm-up: imports, statement caches, the snapshot
    statements: Counter[str] = Counter()
    commits = [0]

    def on_statement(*a: Any) -> None:
        statements[kind(a[2])] += 1

    def on_commit(*_: Any) -> None:
        commits[0] += 1

    event.listen(db.engine, "before_cursor_execute", on_statement)
    event.listen(db.engine, "commit", on_commit)
    prof = cProfile.Profile() if args.cprofile else None
    placed = 0
    c0, t0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    for i in range(args.requests):
        placed += create(i + 1, args.count)
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    event.remove(db.engine, "before_cursor_execute", on_statement)
    event.remove(db.engine, "commit", on_commit)

    total = sum(statements.values())
    print(f"{placed} VMs in {args.requests} requests of {args.count} on {args.hosts:,} hosts")
    print(f"  {placed / wall:.1f} VMs/s, CPU {cpu / placed * 1e3:.2f} ms/VM")
    print(f"  statements {total} ({total / placed:.2f}/VM), commits {commits[0]}")
    for name, n in statements.most_common(20):
        print(f"    {n / placed:8.3f}/VM  {n:7d}  {name}")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    db.dispose()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
