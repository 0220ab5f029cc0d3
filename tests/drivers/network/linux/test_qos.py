"""Bandwidth on a Linux-bridge host, measured with iperf3 between VM namespaces.

The driver shapes what each VM sends and receives (HTB on the host's two QoS ifbs):
a 10 Mbit/s ceiling must measure within 10 % both ways, and under contention for a
20 Mbit/s uplink a tenant's 15 Mbit/s guarantee must hold against a neighbour flooding
the same uplink — while with equal guarantees the two flows share it about evenly, so the
guarantee, not chance, is what the test sees.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from fuyun.domain.qos import HostQos, PortQos, TenantQos
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.linux import LinuxNetworkDriver
from tests.drivers.network.linux import tenants
from tests.drivers.network.linux.lab import LinuxLab, linux_lab, sh
from tests.drivers.network.linux.tenants import VMS, Tenants, Vm
from tests.policy.tools import run, tool

A1, A2, _, B1, B2 = VMS
MBIT = 1_000_000


@dataclass
class Host:
    lab: LinuxLab
    driver: LinuxNetworkDriver
    ns: dict[str, str]
    generation: int = 0

    def shape(self, uplink: int, ports: list[tuple[Vm, int, int]]) -> None:
        doc = HostQos(
            tenants.HOST,
            uplink,
            tuple(
                PortQos(str(v.port_id), v.mac, v.vlan, v.name, str(v.tenant), lo, hi)
                for v, lo, hi in ports
            ),
            tuple(
                TenantQos(
                    str(t),
                    sum(lo for v, lo, _ in ports if v.tenant == t),
                    0,
                    tuple(str(v.port_id) for v, _, _ in ports if v.tenant == t),
                )
                for t in sorted({v.tenant for v, _, _ in ports})
            ),
        )
        self.generation += 1
        text = doc.to_json()
        digest = hashlib.sha256(text.encode()).hexdigest()
        self.driver.apply(AppliedState("host", tenants.HOST, "qos", self.generation, digest), text)

    def iperf(self, src: Vm, dst: Vm, port: int, seconds: int = 4, reverse: bool = False) -> float:
        """Bits per second the receiver counted, the first second (slow start) omitted;
        ``reverse``: ``dst`` sends to ``src``."""
        out = run(
            [
                "ip",
                "netns",
                "exec",
                self.ns[src.name],
                "iperf3",
                "-c",
                dst.ip,
                "-p",
                str(port),
                *(["-R"] if reverse else []),
                "-t",
                str(seconds),
                "-O",
                "1",
                "-J",
            ]
        )
        assert out.returncode == 0, out.stdout[-500:] + out.stderr
        return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"])


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    tool("iperf3", "iperf3")
    with linux_lab() as lab:
        ns = {v.name: lab.vm(str(v.port_id), v.mac, [v.ip]) for v in VMS}
        for name in (A2.name, B2.name):
            for port in ("5201", "5202"):
                proc = lab.spawn(ns[name], "iperf3", "-s", "-p", port, "--forceflush")
                assert proc.stdout is not None
                assert any(
                    "listening" in line for line in (proc.stdout.readline(), proc.stdout.readline())
                )
        driver = LinuxNetworkDriver(tenants.HOST, lab.host)
        driver.apply(*tenants.ports())
        driver.apply(*Tenants().vswitch())
        yield Host(lab, driver, ns)


@pytest.mark.slow
def test_a_10_mbit_ceiling_holds_within_10_percent_both_ways(host: Host) -> None:
    host.shape(1000 * MBIT, [(A1, 0, 10 * MBIT)])
    sent = host.iperf(A1, A2, 5201)
    received = host.iperf(A1, A2, 5201, reverse=True)
    print(f"ceiling 10 Mbit/s: a1 sends {sent / MBIT:.2f}, receives {received / MBIT:.2f} Mbit/s")
    assert 9 * MBIT <= sent <= 11 * MBIT, f"sent {sent / MBIT:.2f} Mbit/s"
    assert 9 * MBIT <= received <= 11 * MBIT, f"received {received / MBIT:.2f} Mbit/s"


@pytest.mark.slow
def test_a_guarantee_holds_against_a_flooding_neighbour(host: Host) -> None:
    def contend() -> tuple[float, float]:
        with ThreadPoolExecutor(max_workers=2) as pool:
            a = pool.submit(host.iperf, A1, A2, 5201)
            b = pool.submit(host.iperf, B1, B2, 5202)
            return a.result(), b.result()

    host.shape(20 * MBIT, [(A1, 1 * MBIT, 0), (B1, 1 * MBIT, 0)])
    even_a, even_b = contend()
    host.shape(20 * MBIT, [(A1, 15 * MBIT, 0), (B1, 1 * MBIT, 0)])
    owed_a, owed_b = contend()
    detail = (
        f"equal: {even_a / MBIT:.1f}/{even_b / MBIT:.1f}, "
        f"guaranteed: {owed_a / MBIT:.1f}/{owed_b / MBIT:.1f} Mbit/s"
    )
    print(detail)
    assert even_a < 13.5 * MBIT, detail  # without the guarantee the uplink is shared
    assert owed_a >= 0.9 * 15 * MBIT, detail
    assert owed_a + owed_b <= 1.1 * 20 * MBIT, detail


@pytest.mark.slow
def test_a_rate_change_retunes_the_classes_in_place(host: Host) -> None:
    def sent() -> int:
        """Bytes the HTB qdisc on fyqos0 has sent: a rebuilt qdisc starts again at 0."""
        out = sh("tc", "-s", "qdisc", "show", "dev", "fyqos0", ns=host.lab.host)
        match = re.search(r"qdisc htb 1: root .*?Sent (\d+) bytes", out, re.S)
        assert match is not None, out
        return int(match[1])

    host.shape(100 * MBIT, [(A1, 2 * MBIT, 10 * MBIT), (B1, 0, 0)])
    ping = ["ip", "netns", "exec", host.ns[A1.name], "ping", "-c", "3", "-i", "0.2", A2.ip]
    assert run(ping).returncode == 0
    before = sent()
    assert before > 0
    host.shape(100 * MBIT, [(A1, 3 * MBIT, 20 * MBIT), (B1, 0, 0)])
    assert sent() >= before, "the same tree was changed in place, not rebuilt"
    classes = sh("tc", "class", "show", "dev", "fyqos0", ns=host.lab.host)
    assert "rate 3Mbit ceil 20Mbit" in classes
    state = host.driver.observe("host", tenants.HOST, "qos")
    assert state is not None and state.generation == host.generation
    host.shape(100 * MBIT, [(A1, 3 * MBIT, 20 * MBIT)])  # B1 leaves: a new tree
    assert sent() < before
