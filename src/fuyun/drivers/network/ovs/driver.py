"""The ``ovs`` network driver: a host's ports, policy and QoS on its Open vSwitch bridge.

A host device is found by the bridge whose ``external_ids:fuyun-host`` names it.
Three documents converge independently, each recorded on the bridge as
``fuyun-<document>-generation`` / ``-digest`` once it is fully in force:

- ``ports`` (:class:`~fuyun.domain.hostports.HostPorts`): each VM port an OVS
  access port tagged with its VLAN, ``iface-id``/``attached-mac`` on the
  interface, MAC anti-spoofing flows in table 0, and the bridge's sFlow agent;
- ``vswitch``: the OpenFlow policy from :mod:`fuyun.policy.render.openflow`,
  conntrack-stateful, replaced atomically by bundle;
- ``qos`` (:class:`~fuyun.domain.qos.HostQos`): each shaped port gets a
  ``linux-htb`` QoS whose queue 0 (the class every frame to the VM lands in) has
  ``min-rate`` = guarantee and ``max-rate`` = ceiling.

Every apply first compares the switch with the document and writes only the
difference, so re-applying an unchanged document changes nothing on the switch;
:meth:`OvsNetworkDriver.drift` names what differs, which is how an agent sees a
flow deleted or a port retagged by hand. Failures raise ``DriverError``; the
bridge's recorded generation only moves after the whole document is in force.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import TypeVar

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import HostPorts, PortBinding, hypervisor_ifname
from fuyun.domain.qos import HostQos
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.ovs.flows import POLICY_COOKIE, PORTS_COOKIE, policy_flows, port_flows
from fuyun.drivers.network.ovs.ofctl import Ofctl
from fuyun.drivers.network.ovs.ovsdb import Ovsdb, OvsPort, SflowConfig
from fuyun.drivers.network.ovs.plug import ExistingInterface, NamespacePlugger, Plugger
from fuyun.policy.ir import device_name

DOCUMENTS = ("ports", "vswitch", "qos")
T = TypeVar("T")
DEFAULT_LINK_BPS = 10_000_000_000


class OvsNetworkDriver:
    name = "ovs"

    def __init__(
        self,
        db: str,
        rundir: Path,
        *,
        plugger: Plugger | None = None,
        sflow: SflowConfig | None = None,
        ofport_timeout_s: float = 10.0,
    ) -> None:
        self.ovsdb = Ovsdb(db)
        self.ofctl = Ofctl(rundir)
        self.plugger: Plugger = plugger or ExistingInterface()
        self.sflow = sflow
        self.ofport_timeout_s = ofport_timeout_s
        self._lock = threading.Lock()
        self._bridges: dict[str, str] = {}  # host -> bridge; checked on every use
        # What this driver last applied per (bridge, document), to read drift against.
        self._applied: dict[tuple[str, str], tuple[AppliedState, str]] = {}

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OvsNetworkDriver:
        """``FUYUN_OVS_DB``, ``FUYUN_OVS_RUNDIR``, ``FUYUN_SFLOW_TARGET`` (host:port) and,
        for the lab, ``FUYUN_OVS_PLUG_NETNS`` + ``FUYUN_OVS_PLUG_PREFIX`` (+
        ``FUYUN_OVS_HYPERVISOR_HOSTS``: hosts whose VMs are QEMU, not namespaces)."""
        env = dict(os.environ if env is None else env)
        rundir = Path(env.get("FUYUN_OVS_RUNDIR", "/var/run/openvswitch"))
        db = env.get("FUYUN_OVS_DB", f"unix:{rundir / 'db.sock'}")
        plugger: Plugger | None = None
        if env.get("FUYUN_OVS_PLUG_NETNS"):
            hypervisor = env.get("FUYUN_OVS_HYPERVISOR_HOSTS", "")
            plugger = NamespacePlugger(
                env["FUYUN_OVS_PLUG_NETNS"],
                env.get("FUYUN_OVS_PLUG_PREFIX", "fuyun-vm-"),
                frozenset(h.strip() for h in hypervisor.split(",") if h.strip()),
            )
        return cls(db, rundir, plugger=plugger, sflow=sflow_from_env(env))

    def close(self) -> None:
        self.plugger.close()
        self.ovsdb.close()

    # -- the NetworkDriver protocol --------------------------------------------------

    def apply(self, state: AppliedState, rendered: str) -> None:
        bridge = self._bridge(state)
        ep = state.enforcement_point
        with self._lock:
            have = self.ovsdb.bridge_ids(bridge)
            if ep == "ports":
                self._apply_ports(bridge, _parse(HostPorts, rendered))
            elif ep == "vswitch":
                # A policy of a new digest is new content: write it without reading the
                # switch first (the change reaches the wire sooner). The same digest again
                # is compared first, so re-applying it changes nothing.
                same = have.get(f"fuyun-{ep}-digest") == state.digest
                self.ofctl.replace(bridge, POLICY_COOKIE, policy_flows(rendered), compare=same)
            elif ep == "qos":
                self._apply_qos(bridge, _parse(HostQos, rendered))
            want = {
                f"fuyun-{ep}-generation": str(state.generation),
                f"fuyun-{ep}-digest": state.digest,
            }
            if any(have.get(k) != v for k, v in want.items()):
                self.ovsdb.set_bridge_ids(bridge, want)
            self._applied[(bridge, ep)] = (state, rendered)

    def observe(
        self, device_type: str, device_name: str, enforcement_point: str
    ) -> AppliedState | None:
        """The state the device enforces: the one recorded on the bridge, if what this
        driver applied is still in force there (read back and compared); None if not."""
        seen = self.recorded(device_type, device_name, enforcement_point)
        if seen is None:
            return None
        bridge = self._find_bridge(device_name)
        applied = self._applied.get((bridge or "", enforcement_point))
        if applied is not None and applied[0] == seen and self.drift(*applied):
            return None
        return seen

    def recorded(
        self, device_type: str, device_name: str, enforcement_point: str
    ) -> AppliedState | None:
        """The generation and digest recorded on the bridge, without reading the switch
        back: cheap enough for every pass of an agent."""
        if device_type != "host":
            return None
        bridge = self._find_bridge(device_name)
        if bridge is None:
            return None
        ids = self.ovsdb.bridge_ids(bridge)
        gen = ids.get(f"fuyun-{enforcement_point}-generation")
        if gen is None:
            return None
        digest = ids.get(f"fuyun-{enforcement_point}-digest", "")
        return AppliedState(device_type, device_name, enforcement_point, int(gen), digest)

    def drift(self, state: AppliedState, rendered: str) -> tuple[str, ...]:
        """What on the switch differs from ``rendered``; empty when it is fully in force."""
        bridge = self._bridge(state)
        with self._lock:
            if state.enforcement_point == "ports":
                return tuple(self._ports_drift(bridge, _parse(HostPorts, rendered)))
            if state.enforcement_point == "vswitch":
                diff = self.ofctl.diff(bridge, POLICY_COOKIE, policy_flows(rendered))
                return tuple(f"flow {line}" for line in diff)
            return tuple(self._qos_drift(bridge, _parse(HostQos, rendered)))

    # -- ports -----------------------------------------------------------------------

    def _bridge(self, state: AppliedState) -> str:
        if state.device_type != "host" or state.enforcement_point not in DOCUMENTS:
            raise DriverError(
                f"ovs: {state.device_type}/{state.enforcement_point} is not a host document"
            )
        bridge = self._find_bridge(state.device_name)
        if bridge is None:
            raise DriverError(f"ovs: no bridge has external_ids:fuyun-host={state.device_name}")
        return bridge

    def _find_bridge(self, host: str) -> str | None:
        cached = self._bridges.get(host)
        if cached is not None and self.ovsdb.bridge_host(cached) == host:
            return cached
        found = self.ovsdb.bridge_for_host(host)
        if found is not None:
            self._bridges[host] = found
        return found

    @staticmethod
    def _ids(binding: PortBinding) -> dict[str, str]:
        return {
            "iface-id": binding.port_id,
            "attached-mac": binding.mac.lower(),
            "vm-id": binding.vm_id,
            "fuyun-tenant": binding.tenant,
        }

    def _names(self, doc: HostPorts) -> dict[str, PortBinding]:
        """The switch port of each binding: the hypervisor's tap on a hypervisor host,
        the port's own device name where the plugger makes the interface (lab VMs)."""
        if self.plugger.hypervisor(doc.host):
            return {hypervisor_ifname(doc.host, b.port_id): b for b in doc.ports}
        return {device_name_of(b): b for b in doc.ports}

    def _apply_ports(self, bridge: str, doc: HostPorts) -> None:
        want = self._names(doc)
        hypervisor = self.plugger.hypervisor(doc.host)
        have = self.ovsdb.ports(bridge)
        for name, port in have.items():
            if "iface-id" in port.iface_ids and name not in want:
                self.ovsdb.delete_port(bridge, name)
                if not hypervisor:  # a hypervisor's tap is its own; it goes with the VM
                    self.plugger.unplug(name)
        if not hypervisor:
            self.plugger.plug([(binding, name) for name, binding in want.items()])
        # A hypervisor's tap may not exist yet (a live migration's destination is
        # programmed before the VM arrives): its port asks for a fixed OpenFlow number,
        # so the flows below match it from the moment the interface appears.
        requests = _requests(have, want) if hypervisor else {}
        self.ovsdb.add_access_ports(
            bridge,
            {n: (b.vlan, self._ids(b)) for n, b in want.items() if n not in have},
            {n: r for n, r in requests.items() if n not in have},
        )
        for name, binding in want.items():
            current = have.get(name)
            if current is None:
                continue
            if (
                current.tag != binding.vlan
                or current.trunks
                or not _ids_match(current, self._ids(binding))
            ):
                self.ovsdb.set_port(name, tag=binding.vlan, iface_ids=self._ids(binding))
            if name in requests and current.ofport_request != requests[name]:
                self.ovsdb.request_ofport(name, requests[name])
        if hypervisor:
            ofports = {n: requests[n] for n in want}
        else:
            ofports = self._wait_ofports(bridge, set(want))
        self.ofctl.replace(
            bridge, PORTS_COOKIE, port_flows([(b, ofports[n]) for n, b in want.items()])
        )
        if self.ovsdb.sflow(bridge) != self._sflow_for(bridge):
            self.ovsdb.set_sflow(bridge, self._sflow_for(bridge))

    def _sflow_for(self, bridge: str) -> SflowConfig | None:
        return self.sflow  # the same agent settings on every bridge of the host

    def _wait_ofports(self, bridge: str, names: set[str]) -> dict[str, int]:
        deadline = time.monotonic() + self.ofport_timeout_s
        while True:
            ports = self.ovsdb.ports(bridge)
            ofports = {n: ports[n].ofport for n in names if n in ports}
            if all(ofports.get(n, -1) > 0 for n in names):
                return ofports
            if time.monotonic() > deadline:
                bad = sorted(n for n in names if ofports.get(n, -1) <= 0)
                raise DriverError(f"ovs: {bridge} could not open {', '.join(bad)}")
            time.sleep(0.02)

    def _ports_drift(self, bridge: str, doc: HostPorts) -> list[str]:
        want = self._names(doc)
        hypervisor = self.plugger.hypervisor(doc.host)
        have = self.ovsdb.ports(bridge)
        out = []
        for name, port in sorted(have.items()):
            if "iface-id" in port.iface_ids and name not in want:
                out.append(f"port {name} is on the bridge but bound elsewhere")
        for name, binding in sorted(want.items()):
            port = have.get(name)
            if port is None:
                out.append(f"port {name} is missing")
                continue
            if port.tag != binding.vlan or port.trunks:
                out.append(f"port {name} has tag {port.tag}, wants {binding.vlan}")
            if not _ids_match(port, self._ids(binding)):
                out.append(f"port {name} has wrong external_ids")
            if hypervisor and port.ofport_request is None:
                out.append(f"port {name} has no OpenFlow port number asked for")
            if not hypervisor and port.ofport <= 0:
                out.append(f"port {name} has no OpenFlow port")
        if not out:
            flows = port_flows(
                [
                    (b, (have[n].ofport_request or -1) if hypervisor else have[n].ofport)
                    for n, b in want.items()
                ]
            )
            out += [f"flow {line}" for line in self.ofctl.diff(bridge, PORTS_COOKIE, flows)]
        if self.ovsdb.sflow(bridge) != self._sflow_for(bridge):
            out.append("sFlow agent differs")
        return out

    # -- QoS -------------------------------------------------------------------------

    def _qos_want(self, doc: HostQos) -> dict[str, dict[str, int | str]]:
        link = doc.uplink_bps or DEFAULT_LINK_BPS
        hypervisor = self.plugger.hypervisor(doc.host)
        return {
            (
                hypervisor_ifname(doc.host, p.port_id)
                if hypervisor
                else device_name(_uuid(p.port_id))
            ): {
                "type": "linux-htb",
                "link": link,
                "min": p.min_bps,
                "max": p.max_bps or link,
            }
            for p in doc.ports
            if p.min_bps or p.max_bps
        }

    def _apply_qos(self, bridge: str, doc: HostQos) -> None:
        want = self._qos_want(doc)
        have = self.ovsdb.ports(bridge)
        missing = sorted(n for n in want if n not in have)
        if missing:  # refused before anything changes
            raise DriverError(f"ovs: QoS for {', '.join(missing)}, not on {bridge} yet")
        for name, port in have.items():
            if port.qos is not None and name not in want:
                self.ovsdb.clear_port_qos(name)
        for name, q in want.items():
            if have[name].qos != q:
                self.ovsdb.set_port_qos(
                    name, min_bps=int(q["min"]), max_bps=int(q["max"]), link_bps=int(q["link"])
                )

    def _qos_drift(self, bridge: str, doc: HostQos) -> list[str]:
        want = self._qos_want(doc)
        have = self.ovsdb.ports(bridge)
        out = []
        for name, port in sorted(have.items()):
            if port.qos is not None and name not in want:
                out.append(f"port {name} is shaped but should not be")
        for name, q in sorted(want.items()):
            got = have[name].qos if name in have else None
            if got != q:
                out.append(f"port {name} QoS is {got}, wants {q}")
        return out


FIRST_REQUESTED_OFPORT = 1000  # above what the switch numbers patch ports with


def _requests(have: dict[str, OvsPort], want: dict[str, PortBinding]) -> dict[str, int]:
    """The OpenFlow port number of each wanted hypervisor port: the one it asked for,
    else the one it has (asking for it changes nothing), else the lowest free one."""
    out: dict[str, int] = {}
    for name in want:
        port = have.get(name)
        if port is not None and port.ofport_request:
            out[name] = port.ofport_request
        elif port is not None and port.ofport > 0:
            out[name] = port.ofport
    taken = set(out.values()) | {p.ofport for p in have.values() if p.ofport > 0}
    taken |= {p.ofport_request for p in have.values() if p.ofport_request}
    free = FIRST_REQUESTED_OFPORT
    for name in sorted(want):
        if name in out:
            continue
        while free in taken:
            free += 1
        out[name] = free
        taken.add(free)
    return out


def device_name_of(binding: PortBinding) -> str:
    return device_name(_uuid(binding.port_id))


def _uuid(text: str) -> uuid.UUID:
    return uuid.UUID(text)


def _parse(kind: type[T], rendered: str) -> T:
    try:
        return kind.from_json(rendered)  # type: ignore[attr-defined, no-any-return]
    except (ValueError, KeyError, TypeError) as exc:
        raise DriverError(f"ovs: not a {kind.__name__} document: {exc}") from exc


def _ids_match(port: OvsPort, ids: dict[str, str]) -> bool:
    return all(port.iface_ids.get(k) == v for k, v in ids.items())


def sflow_from_env(env: dict[str, str]) -> SflowConfig | None:
    target = env.get("FUYUN_SFLOW_TARGET", "")
    if not target:
        return None
    return SflowConfig(
        targets=tuple(sorted(t.strip() for t in target.split(",") if t.strip())),
        sampling=int(env.get("FUYUN_SFLOW_SAMPLING", "64")),
        polling=int(env.get("FUYUN_SFLOW_POLLING", "10")),
        # The agent address: an interface name or IP; unset, OVS takes the route to the target.
        agent=env.get("FUYUN_SFLOW_AGENT", ""),
    )
