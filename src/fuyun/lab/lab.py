"""A data center on one machine: Open vSwitch bridges and network namespaces.

``up`` starts fuyun's own ``ovsdb-server`` and ``ovs-vswitchd`` in ``root`` (the
switch daemon inside the lab's switch namespace, so every port and tap stays
there) and builds the bridges and trunks of :func:`fuyun.lab.topology.plan`.
VMs appear when the ``ovs`` driver applies a host's port map: the lab's
:class:`~fuyun.drivers.network.ovs.NamespacePlugger` makes each VM port a
namespace with a veth on its host's bridge. ``down`` stops the daemons and
removes every namespace the lab made — the switch namespace takes all links
with it — and the run directory. What exists is written to ``lab.json`` first,
so ``down`` and ``status`` work from another process, and after a crash.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyroute2 import IPRoute, netns

from fuyun.domain.errors import Conflict, DriverError
from fuyun.drivers.network.dnsmasq import kill_pidfile
from fuyun.drivers.network.ovs import NamespacePlugger, OvsDaemons, OvsNetworkDriver
from fuyun.drivers.network.ovs.netnode import NetworkNode
from fuyun.drivers.network.ovs.ofctl import Ofctl
from fuyun.drivers.network.ovs.ovsdb import HOST_KEY, Ovsdb, SflowConfig
from fuyun.fabric.spec import FabricSpec
from fuyun.lab.topology import LabPlan, plan

SWITCH_COOKIE = "0x66750002"


@dataclass
class Manifest:
    tag: str
    switch_netns: str
    vm_prefix: str
    bridges: list[dict[str, str]] = field(default_factory=list)
    trunks: list[list[str]] = field(default_factory=list)
    started_at: float = 0.0
    up_seconds: float = 0.0
    service_bridges: dict[str, str] = field(default_factory=dict)  # module -> bridge

    @property
    def router_prefix(self) -> str:
        """Tenant routers' namespaces: ``fuyun-lab-TAGr-fr…`` (not VMs, still the lab's)."""
        return f"fuyun-lab-{self.tag}r-"


@dataclass(frozen=True)
class LabStatus:
    up: bool
    tag: str
    daemons: dict[str, int | None]
    bridges: int
    hosts: int
    vm_namespaces: list[str]
    ports: dict[str, int]  # host -> VM ports on its bridge
    routers: list[str] = field(default_factory=list)  # tenant router namespaces
    dhcp_servers: int = 0  # dnsmasq processes of the network node


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def manifest_path(self) -> Path:
        return self.root / "lab.json"

    def manifest(self) -> Manifest | None:
        try:
            return Manifest(**json.loads(self.manifest_path.read_text()))
        except FileNotFoundError:
            return None

    def _save(self, m: Manifest) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(m), indent=1))
        tmp.replace(self.manifest_path)

    def daemons(self, m: Manifest) -> OvsDaemons:
        return OvsDaemons(self.root / "ovs", netns=m.switch_netns)

    # -- up ----------------------------------------------------------------------------

    def up(self, spec: FabricSpec, hosts: set[str] | None = None) -> Manifest:
        """Build (or complete) the lab for ``spec``; idempotent for the same fabric."""
        started = time.monotonic()
        m = self.manifest()
        if m is None:
            tag = secrets.token_hex(2)
            m = Manifest(tag, f"fuyun-lab-{tag}", f"fuyun-lab-{tag}-", started_at=time.time())
        layout = plan(spec, m.tag, hosts)
        m.bridges = [asdict(b) for b in layout.bridges]
        m.trunks = [list(t) for t in layout.trunks]
        m.service_bridges = dict(layout.service_bridges)
        self._save(m)  # before anything exists, so down can always clean up
        if m.switch_netns not in netns.listnetns():
            netns.create(m.switch_netns)
            # Loopback up: the sFlow agent exports to collectors on 127.0.0.1 in here.
            with IPRoute(netns=m.switch_netns, flags=0) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        daemons = self.daemons(m)
        daemons.start()
        db = Ovsdb(daemons.db)
        try:
            self._build(db, Ofctl(daemons.root), layout, m.tag)
        finally:
            db.close()
        m.up_seconds = round(time.monotonic() - started, 3)
        self._save(m)
        return m

    def _build(self, db: Ovsdb, ofctl: Ofctl, layout: LabPlan, tag: str) -> None:
        existing = db.bridges()
        for b in layout.bridges:
            key = HOST_KEY if b.role == "host" else "fuyun-switch"
            ids = {key: b.fabric_name, "fuyun-lab": tag, "fuyun-role": b.role}
            if existing.get(b.name) != ids:
                db.add_bridge(b.name, ids)
        for lower, upper in layout.trunks:
            # A patch port with neither tag nor trunks carries every VLAN, tagged.
            for here, there in ((lower, upper), (upper, lower)):
                db.add_port(
                    here,
                    f"{here}-{there}",
                    iface_type="patch",
                    options={"peer": f"{there}-{here}"},
                )
        for b in layout.bridges:
            ofctl.wait_ready(b.name)
            if b.role != "host":  # switches switch; hosts wait for their documents
                ofctl.replace(
                    b.name, SWITCH_COOKIE, [f"cookie={SWITCH_COOKIE},priority=0,actions=NORMAL"]
                )

    # -- using it -----------------------------------------------------------------------

    def env(self, qemu_hosts: set[str] | None = None) -> dict[str, str]:
        """Settings that point the ``ovs`` driver (``OvsNetworkDriver.from_env``) at this lab,
        and, for ``qemu_hosts``, the ``qemu`` compute driver (:meth:`qemu_hosts`)."""
        m = self._require()
        d = self.daemons(m)
        env = {
            "FUYUN_OVS_DB": d.db,
            "FUYUN_OVS_RUNDIR": str(d.root),
            "FUYUN_OVS_PLUG_NETNS": m.switch_netns,
            "FUYUN_OVS_PLUG_PREFIX": m.vm_prefix,
        }
        if qemu_hosts:
            env["FUYUN_OVS_HYPERVISOR_HOSTS"] = ",".join(sorted(qemu_hosts))
            env["FUYUN_QEMU_HOSTS"] = json.dumps(self.qemu_hosts(qemu_hosts))
        return env

    def driver(
        self, sflow: SflowConfig | None = None, qemu_hosts: set[str] | None = None
    ) -> OvsNetworkDriver:
        """The ``ovs`` driver for this lab; VMs on ``qemu_hosts`` are QEMU processes whose
        taps the driver adopts, VMs elsewhere namespaces it makes."""
        m = self._require()
        d = self.daemons(m)
        plugger = NamespacePlugger(m.switch_netns, m.vm_prefix, frozenset(qemu_hosts or ()))
        return OvsNetworkDriver(d.db, d.root, plugger=plugger, sflow=sflow)

    def qemu_hosts(self, hosts: set[str]) -> dict[str, dict[str, str]]:
        """Where the ``qemu`` driver runs each host's VMs (``FUYUN_QEMU_HOSTS``): in the
        lab's switch namespace, where ``ovs-vswitchd`` opens the taps QEMU makes, plugged
        into the host's bridge through the lab's own OVSDB."""
        m = self._require()
        db, bridges = self.daemons(m).db, self.hosts()
        unknown = sorted(hosts - set(bridges))
        if unknown:
            raise Conflict(f"no lab host {', '.join(unknown)}", field="hosts")
        return {
            h: {"netns": m.switch_netns, "plug": f"ovs:{bridges[h]}", "ovsdb": db}
            for h in sorted(hosts)
        }

    def network_node(self) -> NetworkNode:
        """The lab's network node: tenant routers and DHCP/DNS on the service bridges."""
        m = self._require()
        d = self.daemons(m)
        return NetworkNode(
            Ovsdb(d.db),
            switch_netns=m.switch_netns,
            prefix=m.router_prefix,
            workdir=self.root / "netsvc",
            bridges=dict(m.service_bridges),
        )

    def hosts(self) -> dict[str, str]:
        """Fabric host name -> its bridge."""
        m = self._require()
        return {b["fabric_name"]: b["name"] for b in m.bridges if b["role"] == "host"}

    def vm_namespace(self, ifname: str) -> str:
        return f"{self._require().vm_prefix}{ifname}"

    def _require(self) -> Manifest:
        m = self.manifest()
        if m is None:
            raise Conflict(f"no lab is up in {self.root}", field="lab", code="lab_down")
        return m

    # -- status and down ----------------------------------------------------------------

    def status(self) -> LabStatus:
        m = self.manifest()
        if m is None:
            return LabStatus(False, "", {}, 0, 0, [], {})
        d = self.daemons(m)
        pids = {name: d.pid(name) for name in ("ovsdb-server", "ovs-vswitchd")}
        vms = sorted(n for n in netns.listnetns() if n.startswith(m.vm_prefix))
        ports: dict[str, int] = {}
        if d.running():
            db = Ovsdb(d.db)
            try:
                for b in m.bridges:
                    if b["role"] == "host" and b["name"] in db.bridges():
                        ports[b["fabric_name"]] = sum(
                            1 for p in db.ports(b["name"]).values() if "iface-id" in p.iface_ids
                        )
            finally:
                db.close()
        hosts = sum(1 for b in m.bridges if b["role"] == "host")
        routers = sorted(n for n in netns.listnetns() if n.startswith(m.router_prefix))
        servers = sum(1 for p in (self.root / "netsvc").glob("*/*/dnsmasq.pid") if _alive(p))
        return LabStatus(
            d.running(), m.tag, pids, len(m.bridges), hosts, vms, ports, routers, servers
        )

    def down(self) -> list[str]:
        """Stop and remove everything the lab made; answers what was removed."""
        m = self.manifest()
        if m is None:
            return []
        removed = []
        daemons = self.daemons(m)
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pid = daemons.pid(name)
            if pid is not None:
                removed.append(f"process {name} ({pid})")
        daemons.stop()
        for pidfile in sorted((self.root / "netsvc").glob("*/*/dnsmasq.pid")):
            if kill_pidfile(pidfile):
                removed.append(f"process dnsmasq ({pidfile.parent.parent.name[:8]}…)")
        for ns in sorted(netns.listnetns()):
            if ns.startswith((m.vm_prefix, m.router_prefix)) or ns == m.switch_netns:
                try:
                    netns.remove(ns)
                except OSError as exc:
                    raise DriverError(f"cannot remove namespace {ns}: {exc}") from exc
                removed.append(f"namespace {ns}")
        shutil.rmtree(self.root, ignore_errors=True)
        removed.append(f"directory {self.root}")
        return removed


def _alive(pidfile: Path) -> bool:
    try:
        return Path(f"/proc/{int(pidfile.read_text().strip())}").exists()
    except (FileNotFoundError, ValueError):
        return False
