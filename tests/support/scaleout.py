"""Real processes for the scale-out tests: API servers, workers, and simulated host agents.

API servers and workers are separate OS processes on one PostgreSQL database, started
and SIGKILLed here. Host agents are threads of the test process, each an
:class:`HttpDesiredStateSource` (the agent's real source) applying what it reads to
its own ``sim`` network driver and reporting back, exactly as an agent process would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.sim import SimNetworkDriver
from fuyun.fabric.generator import GeneratorParams, generate
from fuyun.fabric.yamlio import dump_fabric
from fuyun.remote.desired_state import AgentRefused, Applied, HttpDesiredStateSource
from tests.support.live import free_port, wait_until_up

SCALEOUT_ENV = {
    "FUYUN_WORKFLOW_RUNNER": "queue",
    "FUYUN_RECONCILE_IN_PROCESS": "false",
    "FUYUN_ARGON2_PROFILE": "fast",
}


def agent_fabric(directory: Path, tors: int = 5, hosts_per_tor: int = 12) -> Path:
    """A one-module switched-CLOS fabric where every host's vswitch enforces policy."""
    params = GeneratorParams(
        name="agents",
        sites=1,
        modules_per_site=1,
        tors_per_module=(tors, tors),
        hosts_per_tor=(hosts_per_tor, hosts_per_tor),
        routed_share=0.0,
        density=(10, 10),
        enforcement_points=(("vswitch", 1.0),),
        server_models=(("std-2010-10g", 1.0),),
    )
    path = directory / "agents-fabric.yaml"
    path.write_text(dump_fabric(generate(params)))
    return path


class Proc:
    """One fuyun process (API or worker) that can be killed and started again."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, url: str | None = None):
        self.argv, self.env, self.log, self.url = argv, env, log, url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        if self.url is not None:
            wait_until_up(self.url, self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def api_proc(database_url: str, log_dir: Path, env: dict[str, str]) -> Proc:
    port = free_port()
    full = {**os.environ, "FUYUN_DATABASE_URL": database_url, **SCALEOUT_ENV, **env}
    argv = [
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
    ]
    return Proc(argv, full, log_dir / f"api-{port}.log", url=f"http://127.0.0.1:{port}")


def worker_proc(database_url: str, log_dir: Path, env: dict[str, str], n: int) -> Proc:
    full = {**os.environ, "FUYUN_DATABASE_URL": database_url, **SCALEOUT_ENV, **env}
    argv = [sys.executable, "-m", "fuyun.cli.main", "worker"]
    return Proc(argv, full, log_dir / f"worker-{n}.log")


@contextmanager
def cluster(
    database_url: str, log_dir: Path, *, apis: int, workers: int, env: dict[str, str]
) -> Iterator[tuple[list[Proc], list[Proc]]]:
    """``apis`` API processes and ``workers`` worker processes on one database."""
    api_procs = [api_proc(database_url, log_dir, env) for _ in range(apis)]
    worker_procs = [worker_proc(database_url, log_dir, env, i) for i in range(workers)]
    try:
        for p in api_procs + worker_procs:
            p.start()
        yield api_procs, worker_procs
    except BaseException:
        for log in sorted(log_dir.glob("*.log")):
            sys.stderr.write(f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        for p in api_procs + worker_procs:
            p.stop()


class SimAgent:
    """A host agent: full resync, apply lagging devices to a sim driver, report, watch.

    ``crash_after_apply`` makes the next pass apply and then stop without reporting,
    as a process killed between applying and reporting would.
    """

    def __init__(self, urls: list[str], host: str, token: str, watch_timeout_s: float = 3.0):
        self.host = host
        self.source = HttpDesiredStateSource(
            list(urls), host, token, watch_timeout_s=watch_timeout_s
        )
        self.driver = SimNetworkDriver()
        self.reported: dict[str, int] = {}
        self.crash_after_apply = False
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"agent-{host}", daemon=True)

    def start(self) -> SimAgent:
        self._thread.start()
        return self

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.source.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.source.watch()
                if not self._converge():
                    return
        except AgentRefused as exc:
            self.errors.append(str(exc))
        except Exception as exc:  # a test reads errors; the thread must not die silently
            self.errors.append(repr(exc))

    def _converge(self) -> bool:
        applied = []
        for d in list(self.source.devices.values()):
            seen = self.driver.observe(d.device_type, d.device_name, d.enforcement_point)
            if seen is None or seen.digest != d.digest or seen.generation != d.generation:
                self.driver.apply(
                    AppliedState(
                        d.device_type, d.device_name, d.enforcement_point, d.generation, d.digest
                    ),
                    d.rendered,
                )
            if self.reported.get(d.id.hex) != d.generation:
                applied.append(Applied(d.id, d.generation, d.digest))
        if self.crash_after_apply and applied:
            return False  # "killed" before the report
        if applied:
            with suppress(ConnectionError):
                self.source.report(applied, deadline_s=5)
                for a in applied:
                    self.reported[a.device_id.hex] = a.generation
        return True


def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def check_books(db: object) -> dict[str, int]:
    """Every invariant the scale-out mode promises, read from the store; returns counts.

    Every workflow finished or rolled back; every live VM on exactly one host and its
    ports bound there; no address, MAC or VLAN held twice; quota use equal to what the
    live VMs and addresses hold, tenant by tenant; host use equal to its VMs.
    """
    from collections import Counter

    from sqlalchemy import func, select

    from fuyun.store.engine import Database
    from fuyun.store.models import Host, IpAllocation, Port, Quota, VlanAllocation, Vm, Workflow

    assert isinstance(db, Database)
    with db.read_session() as s:
        unfinished = list(
            s.execute(
                select(Workflow.id, Workflow.kind, Workflow.state).where(
                    Workflow.state.not_in(("succeeded", "rolled_back"))
                )
            )
        )
        assert unfinished == [], f"unfinished workflows: {unfinished[:5]}"
        live = list(s.scalars(select(Vm).where(Vm.state != "deleted")))
        assert all(v.state == "active" for v in live), Counter(v.state for v in live)
        assert all(v.host_id is not None for v in live), "a live VM without a host"
        ports = list(s.scalars(select(Port)))
        by_vm = {v.id: v for v in live}
        for p in ports:
            assert p.vm_id in by_vm, f"port {p.id} of no live VM"
            assert p.host_id == by_vm[p.vm_id].host_id, f"port {p.id} bound to another host"
        macs = Counter(p.mac for p in ports)
        assert not [m for m, n in macs.items() if n > 1], "a MAC held twice"
        allocated = list(
            s.execute(
                select(IpAllocation.vrf_id, IpAllocation.address, IpAllocation.port_id).where(
                    IpAllocation.state == "allocated"
                )
            )
        )
        addrs = Counter((vrf, addr) for vrf, addr, _ in allocated)
        assert not [a for a, n in addrs.items() if n > 1], "an address held twice"
        port_ids = {p.id for p in ports}
        assert all(pid in port_ids for _, _, pid in allocated), "an address of no port"
        vlans = Counter(s.execute(select(VlanAllocation.pool_id, VlanAllocation.vlan)).all())
        assert not [v for v, n in vlans.items() if n > 1], "a VLAN held twice"
        for quota in s.scalars(select(Quota)):
            mine = [v for v in live if v.tenant_id == quota.tenant_id]
            assert quota.used_vms == len(mine), f"tenant {quota.tenant_id}: used_vms"
            assert quota.used_vcpus == sum(v.vcpus for v in mine), "used_vcpus"
            assert quota.used_ram_mb == sum(v.ram_mb for v in mine), "used_ram_mb"
            assert quota.used_bandwidth_mbps == sum(v.bandwidth_mbps for v in mine)
            ips = sum(
                1
                for _, _, pid in allocated
                if any(p.id == pid and p.tenant_id == quota.tenant_id for p in ports)
            )
            assert quota.used_ips == ips, f"tenant {quota.tenant_id}: used_ips"
        for host in s.scalars(select(Host).where(Host.vm_count > 0)):
            on_host = [v for v in live if v.host_id == host.id]
            assert host.vm_count == len(on_host), host.name
            assert host.used_vcpus == sum(v.vcpus for v in on_host), host.name
        total = s.scalar(select(func.sum(Host.vm_count))) or 0
        assert total == len(live), "host VM counts differ from live VMs"
        workflows = s.scalar(select(func.count()).select_from(Workflow)) or 0
    return {"live_vms": len(live), "ports": len(ports), "workflows": int(workflows)}


def stop_agents(agents: list[SimAgent]) -> None:
    """Stop all at once: each finishes its current watch, in parallel."""
    for agent in agents:
        agent.signal_stop()
    for agent in agents:
        agent.stop()
