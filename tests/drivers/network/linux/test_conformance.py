"""The ``linux`` driver passes the network-driver conformance suite, in a namespace."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator

import pytest

from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.domain.qos import HostQos, PortQos, TenantQos
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.linux import LinuxNetworkDriver
from fuyun.drivers.network.linux.bridges import port_device
from fuyun.policy.render import nftables
from tests.drivers.network.conformance import Document, NetworkDriverConformance
from tests.drivers.network.linux.lab import LinuxLab, linux_lab, sh
from tests.policy.world import ENDPOINTS, host_policy

P1, P2, P3 = (str(uuid.UUID(int=(0xD0 + i) << 112 | i)) for i in (1, 2, 3))
MAC = {P1: "fa:16:3e:0d:00:01", P2: "fa:16:3e:0d:00:02", P3: "fa:16:3e:0d:00:03"}


def _binding(port: str, vlan: int, tenant: str, ips: tuple[str, ...]) -> PortBinding:
    return PortBinding(
        port, f"vm-{port[:4]}", f"vm-{port[:4]}", tenant, f"net{vlan}", vlan, MAC[port], ips
    )


def _state(point: str, generation: int, text: str) -> Document:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return AppliedState("host", "h1", point, generation, digest), text


class LinuxHarness:
    points = ("ports", "vswitch", "qos")

    def __init__(self, lab: LinuxLab) -> None:
        self.lab = lab
        for port in (P1, P2, P3):
            lab.port(port)
        self.driver = LinuxNetworkDriver("h1", lab.host)

    def documents(self, point: str) -> tuple[Document, Document]:
        if point == "ports":
            a = HostPorts(
                "h1",
                (
                    _binding(P1, 100, "t1", ("10.0.0.1",)),
                    _binding(P2, 200, "t2", ("10.0.0.2", "2001:db8::2")),
                ),
            )
            b = HostPorts(
                "h1",
                (
                    _binding(P1, 100, "t1", ("10.0.0.1",)),
                    _binding(P2, 100, "t1", ("10.0.0.2",)),
                    _binding(P3, 300, "t3", ("10.0.0.3",)),
                ),
            )
            return _state(point, 1, a.to_json()), _state(point, 2, b.to_json())
        if point == "vswitch":
            a = nftables.render(host_policy("h1", ENDPOINTS[:3]))
            b = nftables.render(host_policy("h1", ENDPOINTS))
            return _state(point, 1, a), _state(point, 2, b)
        qa = HostQos(
            "h1",
            100_000_000,
            (
                PortQos(P1, MAC[P1], 100, "vm1", "t1", 10_000_000, 20_000_000),
                PortQos(P2, MAC[P2], 200, "vm2", "t2", 0, 50_000_000, 30_000),
            ),
            (TenantQos("t1", 20_000_000, 40_000_000, (P1,)),),
        )
        qb = HostQos(
            "h1",
            100_000_000,
            (
                PortQos(P1, MAC[P1], 100, "vm1", "t1", 5_000_000, 10_000_000),
                PortQos(P3, MAC[P3], 300, "vm3", "t3", 1_000_000, 0),
            ),
            (TenantQos("t1", 20_000_000, 40_000_000, (P1,)),),
        )
        return _state(point, 1, qa.to_json()), _state(point, 2, qb.to_json())

    def snapshot(self, point: str) -> str:
        ns = self.lab.host
        if point == "ports":
            # Which port is on which bridge; carrier and STP state settle on their own time.
            links = re.findall(
                r"^\d+: (\S+?)@\S+ .* master (\S+)", sh("bridge", "link", ns=ns), re.M
            )
            return sh("nft", "-a", "list", "table", "bridge", "fuyun_ports", ns=ns) + str(links)
        if point == "vswitch":
            return sh("nft", "-a", "list", "table", "inet", "fuyun", ns=ns)
        out = []
        for ifb in ("fyqos0", "fyqos1"):
            out.append(sh("tc", "class", "show", "dev", ifb, ns=ns))
            out.append(sh("tc", "filter", "show", "dev", ifb, ns=ns))
        out.append(sh("ip", "-d", "link", "show", "fyqos0", ns=ns))
        for port in (P1, P2, P3):
            for hook in ("ingress", "egress"):
                out.append(sh("tc", "filter", "show", "dev", port_device(port), hook, ns=ns))
        return "".join(out)

    def tamper(self, point: str) -> None:
        ns = self.lab.host
        if point == "ports":
            sh("ip", "link", "set", port_device(P1), "nomaster", ns=ns)
        elif point == "vswitch":
            chain = sh("nft", "-a", "list", "chain", "inet", "fuyun", "forward", ns=ns)
            handle = re.search(r"ct state established,related accept # handle (\d+)", chain)
            assert handle is not None
            sh("nft", "delete", "rule", "inet", "fuyun", "forward", "handle", handle[1], ns=ns)
        else:
            sh(
                "tc",
                "class",
                "change",
                "dev",
                "fyqos0",
                "parent",
                "1:100",
                "classid",
                "1:2000",
                "htb",
                "rate",
                "1mbit",
                "ceil",
                "2mbit",
                ns=ns,
            )

    def refused(self, point: str, previous: AppliedState) -> Document:
        generation = previous.generation + 1
        if point == "ports":  # the kernel refuses the MAC; checked before any bridge changes
            bad = HostPorts("h1", (_binding(P1, 300, "t1", ("10.0.0.1",)),))
            text = bad.to_json().replace(MAC[P1], "fa:16:3e:zz:00:01")
            return _state(point, generation, text)
        if point == "vswitch":  # a ruleset that breaks halfway: nft -f loads all or nothing
            good = nftables.render(host_policy("h1", ENDPOINTS))
            half = good.splitlines()[: len(good.splitlines()) // 2]
            return _state(point, generation, "\n".join([*half, "\tchain broken {", "}"]) + "\n")
        bad = HostQos(
            "h1", 100_000_000, (PortQos(P1, MAC[P1], 100, "vm1", "t1", 30_000_000, 20_000_000),)
        )
        return _state(point, generation, bad.to_json())


@pytest.mark.slow
class TestLinuxConformance(NetworkDriverConformance):
    @pytest.fixture
    def harness(self) -> Iterator[LinuxHarness]:
        with linux_lab() as lab:
            yield LinuxHarness(lab)
