"""The ``ovs`` driver passes the network-driver conformance suite, on the session's lab.

Each test gets a bridge of its own (``external_ids:fuyun-host`` naming a fresh host) on
the lab's private Open vSwitch, and a driver of its own; VM ports are namespaces.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest

from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.domain.qos import HostQos, PortQos
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.ovs import OvsNetworkDriver
from fuyun.drivers.network.ovs.flows import POLICY_COOKIE, PORTS_COOKIE
from fuyun.drivers.network.ovs.ofctl import Ofctl
from fuyun.policy.ir import device_name
from fuyun.policy.render import nftables, openflow
from tests.drivers.network.conformance import Document, NetworkDriverConformance
from tests.policy.world import ENDPOINTS, host_policy
from tests.support.labworld import LabWorld

pytestmark = pytest.mark.slow


def _state(host: str, point: str, generation: int, text: str) -> Document:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return AppliedState("host", host, point, generation, digest), text


class OvsHarness:
    points = ("ports", "vswitch", "qos")

    def __init__(self, world: LabWorld) -> None:
        self.host = f"conf-{uuid.uuid4().hex[:8]}"
        self.bridge = f"flc{uuid.uuid4().hex[:8]}"
        self.driver: OvsNetworkDriver = world.lab.driver()
        self.driver.ovsdb.add_bridge(self.bridge, {"fuyun-host": self.host})
        self.ofctl = Ofctl(world.lab.daemons(world.lab.manifest()).root)  # type: ignore[arg-type]
        self.ofctl.wait_ready(self.bridge)
        self.ports = [str(uuid.uuid4()) for _ in range(3)]
        self.macs = [f"fa:16:3e:c0:{i:02x}:{n:02x}" for i, n in enumerate(range(3), start=1)]

    def _binding(self, i: int, vlan: int) -> PortBinding:
        p = self.ports[i]
        return PortBinding(
            p,
            f"vm{i}",
            f"vm{i}",
            f"t{vlan}",
            f"n{vlan}",
            vlan,
            self.macs[i],
            (f"10.99.{vlan % 256}.{i + 2}",),
        )

    def documents(self, point: str) -> tuple[Document, Document]:
        if point == "ports":
            a = HostPorts(self.host, (self._binding(0, 100), self._binding(1, 200)))
            b = HostPorts(
                self.host, (self._binding(0, 100), self._binding(1, 100), self._binding(2, 300))
            )
            return _state(self.host, point, 1, a.to_json()), _state(
                self.host, point, 2, b.to_json()
            )
        if point == "vswitch":
            a = openflow.render(host_policy(self.host, ENDPOINTS[:3]))
            b = openflow.render(host_policy(self.host, ENDPOINTS))
            return _state(self.host, point, 1, a), _state(self.host, point, 2, b)
        q = [
            HostQos(
                self.host,
                100_000_000,
                (PortQos(self.ports[0], self.macs[0], 100, "vm0", "t", rate, 2 * rate),),
            )
            for rate in (10_000_000, 20_000_000)
        ]
        return (
            _state(self.host, point, 1, q[0].to_json()),
            _state(self.host, point, 2, q[1].to_json()),
        )

    def snapshot(self, point: str) -> str:
        ports = self.driver.ovsdb.ports(self.bridge)
        if point == "ports":
            listing = sorted(
                f"{n} tag={p.tag} {sorted(p.iface_ids.items())}" for n, p in ports.items()
            )
            return "\n".join(listing + sorted(self.ofctl.dump(self.bridge, PORTS_COOKIE)))
        if point == "vswitch":
            return "\n".join(sorted(self.ofctl.dump(self.bridge, POLICY_COOKIE)))
        return "\n".join(sorted(f"{n} {p.qos}" for n, p in ports.items()))

    def tamper(self, point: str) -> None:
        name = device_name(uuid.UUID(self.ports[0]))
        if point == "ports":
            port = self.driver.ovsdb.ports(self.bridge)[name]
            self.driver.ovsdb.set_port(name, tag=(port.tag or 0) + 7, iface_ids=port.iface_ids)
        elif point == "vswitch":
            self.ofctl.delete(self.bridge, "table=10")
        else:
            self.driver.ovsdb.set_port_qos(name, min_bps=1, max_bps=1_000_000, link_bps=10**9)

    def refused(self, point: str, previous: AppliedState) -> Document:
        nxt = previous.generation + 1
        if point == "ports":
            return _state(self.host, point, nxt, "{not a port map")
        if point == "vswitch":  # a ruleset for a Linux bridge, not an OpenFlow table
            return _state(
                self.host, point, nxt, nftables.render(host_policy(self.host, ENDPOINTS[:3]))
            )
        stranger = PortQos(str(uuid.uuid4()), "fa:16:3e:c0:ff:ff", 100, "x", "t", 1, 2)
        return _state(self.host, point, nxt, HostQos(self.host, 10**8, (stranger,)).to_json())

    def close(self) -> None:
        empty = HostPorts(self.host)
        self.driver.apply(AppliedState("host", self.host, "ports", 99, "empty"), empty.to_json())
        self.driver.ovsdb.delete_bridge(self.bridge)
        self.driver.close()


class TestOvsConformance(NetworkDriverConformance):
    @pytest.fixture
    def harness(self, lab: LabWorld) -> Iterator[OvsHarness]:
        h = OvsHarness(lab)
        try:
            yield h
        finally:
            h.close()
