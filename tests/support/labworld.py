"""One lab for the whole test session: 2 ToRs x 2 hosts on private Open vSwitch daemons.

The store is a real migrated SQLite database seeded with a four-host fabric (one
module enforcing policy in the vswitch); the API runs in process; the host
agent drives the lab through the ``ovs`` driver. VMs are created through the
API and appear as namespaces once the agent converges. All traffic stays inside
the namespaces the lab made; ``Lab.down`` removes them at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from fuyun.agent import HostAgent, NetworkServicesAgent, StoreNetworkServices, StoreSource
from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.domain.enums import VSwitchKind
from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.drivers.compute import ComputeDriver
from fuyun.drivers.compute.base import InstanceSpec, InstanceStatus, MigrationStats
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.drivers.compute.qemu import QemuComputeDriver, QemuConfig
from fuyun.drivers.compute.qemu.config import parse_hosts
from fuyun.drivers.network.ovs import OvsNetworkDriver
from fuyun.fabric.generator import generate
from fuyun.fabric.spec import FabricSpec
from fuyun.fabric.yamlio import dump_fabric
from fuyun.lab import Lab
from fuyun.policy.ir import device_name
from fuyun.services.bootstrap import bootstrap
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState
from tests.policy.netns_lab import CONNECT, SERVER
from tests.support.capabilities import missing
from tests.support.guest import Guest

NEEDS = {
    "ovs-vswitchd": "openvswitch-switch",
    "ovsdb-server": "openvswitch-switch",
    "ovs-ofctl": "openvswitch-switch",
    "ip": "iproute2",
    "ethtool": "ethtool",
    "iperf3": "iperf3",
    "ping": "iputils-ping",
}


def require_lab() -> None:
    if os.geteuid() != 0:
        missing("lab", "network namespaces and Open vSwitch need root")
    for binary, package in NEEDS.items():
        if shutil.which(binary) is None and not Path("/usr/sbin", binary).exists():
            missing(package, f"{binary} not found (apt-get install {package})")


def lab_fabric(tors: int = 2, hosts_per_tor: int = 2) -> FabricSpec:
    """The ``small`` preset cut down to one vswitch-enforcing module of ``tors`` x ``hosts``."""
    spec = generate("small")
    module = next(m for m in spec.modules if m.enforcement_point.value == "vswitch")
    tor_names = sorted(
        s.name for s in spec.switches if s.module == module.name and s.role.value == "tor"
    )[:tors]
    hosts = []
    for tor in tor_names:
        under = sorted((h for h in spec.hosts if h.tor == tor), key=lambda h: h.name)
        # Room for every test's VMs on the session's four hosts.
        hosts += [
            h.model_copy(update={"vswitch": VSwitchKind.OVS, "max_vms": 32})
            for h in under[:hosts_per_tor]
        ]
    switches = [
        s
        for s in spec.switches
        if s.name in tor_names or (s.module == module.name and s.role.value == "aggregation")
    ]
    return spec.model_copy(
        update={
            "modules": [module],
            "sites": [s for s in spec.sites if s.name == module.site],
            "interconnects": [],
            "switches": switches,
            "hosts": hosts,
        }
    )


@dataclass
class Vm:
    id: str
    name: str
    tenant: str
    host: str
    port_id: str
    ip: str

    @property
    def ifname(self) -> str:
        return device_name(uuid.UUID(self.port_id))


@dataclass
class LabWorld:
    lab: Lab
    db: Database
    client: TestClient
    token: str
    driver: OvsNetworkDriver
    agent: HostAgent
    hosts: list[str]
    services: NetworkServicesAgent
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    qemu: QemuComputeDriver | None = None

    @property
    def op(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, f"/api/v1{path}", headers=self.op, **kw)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def tenant(self, name: str, cidr: str) -> str:
        t = self.call("POST", "/tenants", json={"name": name, "quotas": {}})
        self.call(
            "POST",
            "/networks",
            json={"name": "net", "cidr": cidr, "site": "sz1", "tenant_id": t["id"]},
        )
        return str(t["id"])

    def vm(
        self,
        tenant_id: str,
        name: str,
        host: str,
        groups: list[str] | None = None,
        network: str = "net",
        qos_policy: str | None = None,
        flavor: str = "s1.small",
    ) -> Vm:
        body: dict[str, Any] = {
            "name": name,
            "flavor": flavor,
            "networks": [network],
            "host": host,
            "tenant_id": tenant_id,
        }
        if groups:
            body["security_groups"] = groups
        if qos_policy:
            body["qos_policy"] = qos_policy
        made = self.call("POST", "/vms", json=body)["items"][0]
        binding = self.binding(host, made["id"])
        return Vm(made["id"], name, tenant_id, host, binding.port_id, binding.ips[0])

    def binding(self, host: str, vm_id: str) -> PortBinding:
        with self.db.read_session() as s:
            text = s.scalar(
                select(DeviceState.rendered).where(
                    DeviceState.device_type == "host",
                    DeviceState.device_name == host,
                    DeviceState.enforcement_point == "ports",
                )
            )
        assert text, f"no port map for {host}"
        return next(p for p in HostPorts.from_json(text).ports if p.vm_id == vm_id)

    def converge(self) -> None:
        for result in self.agent.reconcile_all(self.hosts, audit=True):
            assert not result.errors, result.errors
        services = self.services.reconcile()
        assert not services.errors, services.errors

    def ns(self, vm: Vm) -> str:
        return self.lab.vm_namespace(vm.ifname)

    def bridge(self, vm: Vm) -> str:
        return self.lab.hosts()[vm.host]

    def ping(self, src: Vm, dst: Vm) -> bool:
        cmd = ["ip", "netns", "exec", self.ns(src), "ping", "-c1", "-W0.5", "-q", dst.ip]
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0

    def connects(self, src: Vm, dst: Vm, port: int, timeout_s: float = 0.5) -> bool:
        script = CONNECT.replace("s.settimeout(1.0)", f"s.settimeout({timeout_s})")
        cmd = ["ip", "netns", "exec", self.ns(src), sys.executable, "-c", script]
        result = subprocess.run([*cmd, src.ip, dst.ip, str(port)], capture_output=True, check=False)
        return result.returncode == 0

    def serve(self, vm: Vm, ports: list[int]) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(vm), sys.executable, "-c", SERVER, *map(str, ports)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.servers.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def stop_servers(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        self.servers.clear()


PROBER = """
import socket, sys, time
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def attempt():
    s = socket.socket(); s.settimeout(0.05); s.bind((src, 0))
    try:
        s.connect((dst, port)); return True
    except OSError:
        return False
    finally:
        s.close()
print("ready", flush=True)
for line in sys.stdin:
    want, limit = line.split()[0] == "open", float(line.split()[1])
    start = time.monotonic()
    while time.monotonic() - start < limit:
        t = time.monotonic()
        if attempt() == want:
            print(time.monotonic() if want else t, flush=True)
            break
    else:
        print("timeout", flush=True)
"""


class Prober:
    """A process inside a VM that keeps trying a TCP port until it is open (or closed) and
    says when, on the machine's monotonic clock; no process start per attempt."""

    def __init__(self, world: LabWorld, src: Vm, dst: Vm, port: int) -> None:
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                world.ns(src),
                sys.executable,
                "-c",
                PROBER,
                src.ip,
                dst.ip,
                str(port),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        world.servers.append(self.proc)  # stopped with the world's other processes
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def until(self, state: str, limit_s: float) -> float | None:
        """The monotonic time the port was first seen ``open``/``closed``, or None."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{state} {limit_s}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        return None if answer in ("timeout", "") else float(answer)


def wait_for(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> float | None:
    """Seconds until ``check()`` held, or None if it did not within ``timeout_s``."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            return None
        time.sleep(interval_s)


@contextmanager
def lab_world(
    root: Path, *, qemu_hosts: frozenset[str] = frozenset(), guest: Guest | None = None
) -> Iterator[LabWorld]:
    """The lab with its store, API and agent; VMs on ``qemu_hosts`` are real QEMU guests
    (``guest`` booted by the ``qemu`` driver in the lab's switch namespace), the others
    namespaces. With QEMU hosts the API's runtime applies devices through the lab's
    ``ovs`` driver too, so a move converges its destination on the wire before the VM
    moves; without, it is the ``sim`` default and the agent alone drives the lab."""
    require_lab()
    spec = lab_fabric()
    fabric_file = root / "fabric.yaml"
    fabric_file.write_text(dump_fabric(spec))
    db = Database(f"sqlite:///{root / 'fuyun.db'}")
    settings = Settings(database_url=db.url)
    fake = FakeComputeDriver()
    result = bootstrap(db, settings, fake, fabric=str(fabric_file))
    lab = Lab(root / "lab")
    qemu: QemuComputeDriver | None = None
    run_dir = Path(tempfile.mkdtemp(prefix="fylq", dir="/tmp"))  # short socket paths
    try:
        lab.up(spec)
        driver = lab.driver(qemu_hosts=set(qemu_hosts))
        agent = HostAgent(StoreSource(db), driver)
        node = lab.network_node()
        services = NetworkServicesAgent(StoreNetworkServices(db, settings), node)
        compute: ComputeDriver = fake
        network: OvsNetworkDriver | None = None
        if qemu_hosts:
            qemu = QemuComputeDriver(
                QemuConfig(
                    state_dir=root / "qemu",
                    run_dir=run_dir,
                    kernel=guest.kernel if guest else None,
                    initrd=guest.initrd if guest else None,
                    append=guest.append if guest else "",
                    hosts=parse_hosts(json.dumps(lab.qemu_hosts(set(qemu_hosts)))),
                )
            )
            compute = PerHostCompute(qemu, fake, qemu_hosts)
            network = lab.driver(qemu_hosts=set(qemu_hosts))
        runtime = Runtime(db, settings, compute, network=network)
        app = create_app(settings, runtime=runtime)
        with TestClient(app, raise_server_exceptions=False) as client:
            world = LabWorld(
                lab,
                db,
                client,
                result.token,
                driver,
                agent,
                sorted(h.name for h in spec.hosts),
                services,
            )
            world.qemu = qemu
            try:
                yield world
            finally:
                world.stop_servers()
                node.shutdown()
                node.close()
                driver.close()
                if network is not None:
                    network.close()
    finally:
        if qemu is not None:  # before the lab: QEMU processes outlive their namespace
            for host in qemu_hosts:
                for inst in qemu.list_instances(host):
                    qemu.delete(host, inst.vm_id)
        lab.down()
        shutil.rmtree(run_dir, ignore_errors=True)
        db.dispose()


class PerHostCompute:
    """QEMU on some lab hosts, the ``fake`` driver (VMs as the lab's namespaces) on the
    rest: one API serves both, as a fleet of mixed hypervisors would."""

    name = "per-host"

    def __init__(
        self, qemu: QemuComputeDriver, other: ComputeDriver, qemu_hosts: frozenset[str]
    ) -> None:
        self.qemu, self.other, self.qemu_hosts = qemu, other, qemu_hosts

    def _on(self, host: str) -> ComputeDriver:
        return self.qemu if host in self.qemu_hosts else self.other

    def create(self, spec: InstanceSpec) -> None:
        self._on(spec.host).create(spec)

    def start(self, host: str, vm_id: uuid.UUID) -> None:
        self._on(host).start(host, vm_id)

    def stop(self, host: str, vm_id: uuid.UUID) -> None:
        self._on(host).stop(host, vm_id)

    def reboot(self, host: str, vm_id: uuid.UUID) -> None:
        self._on(host).reboot(host, vm_id)

    def resize(self, host: str, vm_id: uuid.UUID, vcpus: int, ram_mb: int) -> None:
        self._on(host).resize(host, vm_id, vcpus, ram_mb)

    def delete(self, host: str, vm_id: uuid.UUID) -> None:
        self._on(host).delete(host, vm_id)

    def migrate(
        self, vm_id: uuid.UUID, source_host: str, dest_host: str, *, max_downtime_ms: int = 300
    ) -> MigrationStats:
        src, dst = self._on(source_host), self._on(dest_host)
        if src is not dst:
            raise DriverError(f"{source_host} and {dest_host} run different hypervisors")
        return src.migrate(vm_id, source_host, dest_host, max_downtime_ms=max_downtime_ms)

    def status(self, host: str, vm_id: uuid.UUID) -> InstanceStatus | None:
        return self._on(host).status(host, vm_id)

    def list_instances(self, host: str) -> list[InstanceStatus]:
        return self._on(host).list_instances(host)
