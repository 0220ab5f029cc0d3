"""QoS: admission checks per second and HostQos compile time, against recompute-everything.

Claim (issue 8): admission control and per-host compilation cost what one host
costs, not what the fleet costs. One run, one store (SQLite by default;
``--postgres URL`` for an empty PostgreSQL database):

- set-up: the ``--fabric`` preset (``default``: 6,400 hosts); every host gets room for
  ``--vms-per-host`` VMs (``max_vms``, vCPU, RAM, disk raised; NICs 20 Gbit/s), one
  tenant with a port policy ``gold`` (10 Mbit/s guaranteed) and ``silver``
  (20 Mbit/s), ``--vms-per-host`` VMs on each of ``--hosts`` hosts through the
  service (all with ``gold``), and ``--fleet-ports`` more shaped ports bound to the
  module's other hosts (bulk-inserted, for the baselines to recompute);
- **admission check**: flip one port between gold and silver and call
  ``qos_admission.admit`` for its (tenant, host) — host row lock, the host's ports
  re-read, three conditional updates (quota, host, ToR). Baseline in the same
  session: the naive check that recomputes every host's and ToR's guaranteed sum
  from all ports in the store and compares each with its capacity;
- **HostQos compile** for one host with ``--vms-per-host`` VMs: ``compile_hosts``
  of that host (its document and its ToR's, digest compare, store), and the pure
  ``host_qos`` alone. Baseline: ``compile_hosts`` of every host with ports;
- **end to end**: ``qos.set_port_policy`` (validation, admission, compile,
  audit, commit) p50/p99 over ``--changes`` calls.

Timed loops run in one transaction that is rolled back (except end to end), so
every iteration sees the same store.

    .venv/bin/python benchmarks/bench_qos.py                 # a few minutes
    .venv/bin/python benchmarks/bench_qos.py --fabric small --fleet-ports 0 --hosts 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FUYUN_ARGON2_PROFILE", "fast")

from sqlalchemy import func, insert, select, update  # noqa: E402

from fuyun.config import Settings  # noqa: E402
from fuyun.drivers.compute.fake import FakeComputeDriver  # noqa: E402
from fuyun.qos.compile import host_qos  # noqa: E402
from fuyun.services import networks, qos, tenants, vms  # noqa: E402
from fuyun.services.bootstrap import bootstrap  # noqa: E402
from fuyun.services.principal import SYSTEM  # noqa: E402
from fuyun.services.qos import PolicySpec  # noqa: E402
from fuyun.services.qos_admission import admit, compile_hosts, host_inputs  # noqa: E402
from fuyun.services.runtime import Runtime  # noqa: E402
from fuyun.store.engine import Database  # noqa: E402
from fuyun.store.migrate import upgrade  # noqa: E402
from fuyun.store.models import Host, Port, QosPolicy, Switch, TenantQos, Vm  # noqa: E402


def setup(db: Database, args: argparse.Namespace) -> tuple[Runtime, uuid.UUID, list[Host]]:
    hosts, per_host = args.hosts, args.vms_per_host
    bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric=args.fabric)
    with db.write_session() as s:
        s.execute(
            update(Host).values(
                max_vms=per_host,
                vcpus=per_host,
                ram_mb=per_host * 4096,
                disk_gb=per_host * 40,
                nic_mbps=20_000,
            )
        )
    tenant = tenants.create_tenant(
        db,
        SYSTEM,
        name="bench",
        limits={
            "vms": 10_000,
            "vcpus": 100_000,
            "ram_mb": 1 << 30,
            "ips": 100_000,
            "bandwidth_mbps": 10**7,
        },
    )
    rt = Runtime(db, Settings(database_url=db.url), FakeComputeDriver())
    networks.create_network(
        networks.Networking(db=db, settings=rt.settings),
        SYSTEM,
        networks.NetworkRequest(name="n", prefix_len=16, module="sz1-m01", tenant_id=tenant.id),
    )
    for name, g in (("gold", 10), ("silver", 20)):
        qos.create_policy(db, SYSTEM, PolicySpec(name, "port", g, 1000), tenant_id=tenant.id)
    with db.read_session() as s:
        chosen = list(
            s.scalars(
                select(Host).where(Host.name.like("sz1-m01-%")).order_by(Host.name).limit(hosts)
            )
        )
    for h in chosen:
        vms.create_vms(
            rt,
            SYSTEM,
            vms.VmRequest(
                name=f"v-{h.name}",
                flavor="s1.small",
                count=per_host,
                host=h.name,
                networks=("n",),
                tenant_id=tenant.id,
                qos_policy="gold",
            ),
        )
    fill(db, tenant.id, {h.id for h in chosen}, args.fleet_ports)
    return rt, tenant.id, chosen


def fill(db: Database, tenant_id: uuid.UUID, skip: set[uuid.UUID], ports: int) -> None:
    """The rest of the fleet: ``ports`` shaped ports bound to the module's other hosts.

    Bulk-inserted (no addresses, no admission: set-up speed), so the recompute-all
    baseline has a fleet to recompute; the measured hosts are not touched.
    """
    if ports <= 0:
        return
    with db.write_session() as s:
        port = s.scalar(select(Port).where(Port.tenant_id == tenant_id).limit(1))
        gold = s.scalar(select(QosPolicy.id).where(QosPolicy.name == "gold"))
        assert port is not None
        others = [
            h
            for h in s.scalars(
                select(Host.id)
                .where(
                    Host.module_id
                    == select(Host.module_id).where(Host.id == port.host_id).scalar_subquery()
                )
                .order_by(Host.name)
            )
            if h not in skip
        ]
        rows = [
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "network_id": port.network_id,
                "segment_id": port.segment_id,
                "host_id": others[i % len(others)],
                "name": "eth0",
                "mac": "02:fb:" + ":".join(f"{b:02x}" for b in i.to_bytes(4, "big")),
                "qos_policy_id": gold,
            }
            for i in range(ports)
        ]
        s.execute(insert(Port), rows)


def naive_check(s: Any) -> bool:
    """Recompute every host's and ToR's guaranteed sum from all ports; compare with capacity."""
    per_host: dict[uuid.UUID, int] = defaultdict(int)
    per_pair: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
    aggregates = dict(
        s.execute(
            select(TenantQos.tenant_id, QosPolicy.guarantee_mbps).join(
                QosPolicy, QosPolicy.id == TenantQos.policy_id
            )
        ).all()
    )
    for host_id, tenant_id, g in s.execute(
        select(Port.host_id, Port.tenant_id, func.coalesce(QosPolicy.guarantee_mbps, 0))
        .outerjoin(QosPolicy, QosPolicy.id == Port.qos_policy_id)
        .where(Port.host_id.is_not(None))
    ):
        per_pair[(tenant_id, host_id)] += g
    for (tenant_id, host_id), g in per_pair.items():
        per_host[host_id] += max(g, aggregates.get(tenant_id, 0))
    per_tor: dict[uuid.UUID, int] = defaultdict(int)
    ok = True
    flavors = dict(
        s.execute(
            select(Vm.host_id, func.sum(Vm.bandwidth_mbps))
            .where(Vm.state != "deleted")
            .group_by(Vm.host_id)
        ).all()
    )
    for host_id, tor_id, nic in s.execute(select(Host.id, Host.tor_id, Host.nic_mbps)):
        per_tor[tor_id] += per_host.get(host_id, 0)
        ok &= per_host.get(host_id, 0) + (flavors.get(host_id) or 0) <= nic
    for tor_id, cap in s.execute(select(Switch.id, Switch.uplink_mbps)):
        ok &= per_tor.get(tor_id, 0) <= cap
    return ok


def timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(db: Database, args: argparse.Namespace, label: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    rt, tenant_id, hosts = setup(db, args)
    setup_s = time.perf_counter() - t0
    host = hosts[0]
    res: dict[str, Any] = {"label": label, "setup_s": setup_s, "ports": 0}
    with db.write_session() as s:
        res["ports"] = s.scalar(
            select(func.count()).select_from(Port).where(Port.host_id.is_not(None))
        )
        gold, silver = (
            s.scalar(select(QosPolicy.id).where(QosPolicy.name == n)) for n in ("gold", "silver")
        )
        port = s.scalar(select(Port).where(Port.host_id == host.id).limit(1))
        assert port is not None
        port_id = port.id
        state = {"flip": False}

        def one_admit() -> None:
            state["flip"] = not state["flip"]
            port.qos_policy_id = silver if state["flip"] else gold
            s.flush()
            admit(s, {(tenant_id, host.id)})

        admit_t = timed(one_admit, args.checks)
        naive_t = timed(lambda: naive_check(s), max(5, args.checks // 10))
        inputs = host_inputs(s, {host.id})[host.id]
        pure_t = timed(lambda: host_qos(inputs), args.checks)

        def one_compile() -> None:
            state["flip"] = not state["flip"]
            port.qos_policy_id = silver if state["flip"] else gold
            s.flush()
            compile_hosts(s, {host.id})

        compile_t = timed(one_compile, args.compiles)
        every = set(s.scalars(select(Port.host_id).where(Port.host_id.is_not(None)).distinct()))

        def all_compile() -> None:
            state["flip"] = not state["flip"]
            port.qos_policy_id = silver if state["flip"] else gold
            s.flush()
            compile_hosts(s, every)

        all_t = timed(all_compile, 2)
        s.rollback()
    policies = ["gold", "silver"]
    e2e = []
    for i in range(args.changes):
        t1 = time.perf_counter()
        qos.set_port_policy(rt, SYSTEM, port_id, policies[(i + 1) % 2])
        e2e.append(time.perf_counter() - t1)
    res.update(
        hosts_with_ports=len(every),
        admit_med=statistics.median(admit_t),
        naive_med=statistics.median(naive_t),
        pure_med=statistics.median(pure_t),
        compile_med=statistics.median(compile_t),
        all_med=statistics.median(all_t),
        e2e_p50=pct(e2e, 0.5),
        e2e_p99=pct(e2e, 0.99),
    )
    return res


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    ms = 1000.0
    print(
        f"\n### {r['label']}, {args.fabric} fabric: {args.hosts} hosts x {args.vms_per_host}"
        f" VMs through the service, {args.fleet_ports} more shaped ports;"
        f" {r['ports']} shaped ports on {r['hosts_with_ports']} hosts; set-up {r['setup_s']:.1f} s"
    )
    print("| measure | fuyun (one host) | baseline (recompute all) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| admission check | {1 / r['admit_med']:,.1f} checks/s ({r['admit_med'] * ms:.2f} ms)"
        f" | {1 / r['naive_med']:,.1f} checks/s ({r['naive_med'] * ms:.2f} ms)"
        f" | {r['naive_med'] / r['admit_med']:.1f}x |"
    )
    print(
        f"| HostQos compile, {args.vms_per_host} VMs (store) | {r['compile_med'] * ms:.2f} ms"
        f" | {r['all_med'] * ms:.2f} ms | {r['all_med'] / r['compile_med']:.1f}x |"
    )
    pure = r["pure_med"] * ms
    print(f"| HostQos compile, {args.vms_per_host} VMs (pure host_qos) | {pure:.3f} ms | | |")
    print(
        f"| set_port_policy end to end | p50 {r['e2e_p50'] * ms:.1f} ms,"
        f" p99 {r['e2e_p99'] * ms:.1f} ms | | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fabric", default="default", help="preset (default: 6,400 hosts)")
    parser.add_argument("--fleet-ports", type=int, default=20_000, help="shaped ports elsewhere")
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--vms-per-host", type=int, default=40)
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--compiles", type=int, default=50)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--postgres", help="an empty PostgreSQL database URL")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores (shared machine)")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/fuyun.db")
        upgrade(db.engine)
        report(run(db, args, "SQLite"), args)
        db.dispose()
    if args.postgres:
        db = Database(args.postgres)
        upgrade(db.engine)
        report(run(db, args, "PostgreSQL"), args)
        db.dispose()


if __name__ == "__main__":
    main()
