"""Real packets on a Linux-bridge host converged by the ``linux`` driver.

Two tenants' VMs (namespaces) on one host (a namespace): the driver applies the
port map and the compiled vswitch policy; every ordered VM pair is probed with
ICMP and TCP over IPv4 and IPv6, and what passes must be exactly what ``fuyun verify`` computes
from the same compiled state. A security-group change re-applied through the
driver opens, then closes, a TCP port.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from fuyun.drivers.network.linux import LinuxNetworkDriver
from fuyun.verify.evaluate import Service
from fuyun.verify.reachability import analyse, endpoint_reach
from tests.drivers.network.linux import tenants
from tests.drivers.network.linux.lab import LinuxLab, linux_lab
from tests.drivers.network.linux.tenants import DB, VMS, WEB, Tenants, Vm
from tests.policy.netns_lab import CONNECT, SERVER
from tests.policy.tools import run, tool

SERVICES = (Service("icmp"), Service("tcp", 80), Service("tcp", 5432))


@dataclass
class Host:
    lab: LinuxLab
    driver: LinuxNetworkDriver
    tenants: Tenants
    ns: dict[str, str]

    def apply_policy(self) -> None:
        self.driver.apply(*self.tenants.vswitch())

    def passes(self, src: Vm, dst: Vm, service: Service, family: int = 4) -> bool:
        s, d = (src.ip, dst.ip) if family == 4 else (src.ip6, dst.ip6)
        if service.protocol == "icmp":
            cmd = ["ping", f"-{family}", "-c", "1", "-W", "1", "-q", d]
        else:
            cmd = [sys.executable, "-c", CONNECT, s, d, str(service.port)]
        return run(["ip", "netns", "exec", self.ns[src.name], *cmd]).returncode == 0


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    tool("iputils-ping", "ping")
    with linux_lab() as lab:
        ns = {v.name: lab.vm(str(v.port_id), v.mac, [v.ip, v.ip6]) for v in VMS}
        for name in ns.values():
            proc = lab.spawn(name, sys.executable, "-c", SERVER, "80", "5432", "8080")
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        driver = LinuxNetworkDriver(tenants.HOST, lab.host)
        h = Host(lab, driver, Tenants(), ns)
        driver.apply(*tenants.ports())
        h.apply_policy()
        yield h


def _matrix(host: Host) -> dict[tuple[str, str, Service, int], bool]:
    probes = [
        (s, d, svc, fam) for s in VMS for d in VMS if s != d for svc in SERVICES for fam in (4, 6)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = pool.map(lambda p: host.passes(*p), probes)
        return {
            (s.name, d.name, svc, fam): ok
            for (s, d, svc, fam), ok in zip(probes, results, strict=True)
        }


@pytest.mark.slow
def test_packets_pass_exactly_where_verify_says(host: Host) -> None:
    reach = endpoint_reach(analyse([host.tenants.policy()]))
    # verify answers per port pair and service; every rule here exists in both families,
    # so both families' packets must agree with it.
    expected = {
        (s.name, d.name, svc, fam): (s.port_id, d.port_id, svc) in reach
        for s in VMS
        for d in VMS
        if s != d
        for svc in SERVICES
        for fam in (4, 6)
    }
    observed = _matrix(host)
    assert observed == expected
    # The matrix is not trivial: intended pairs reach, same-tenant pairs without a rule
    # do not, and no pair across tenants does (although tenant B accepts tcp 80 from anywhere).
    for fam in (4, 6):
        assert observed[("a1", "a2", Service("tcp", 80), fam)]
        assert observed[("a1", "a2", Service("icmp"), fam)]
        assert observed[("a1", "a3", Service("tcp", 5432), fam)]
        assert not observed[("a3", "a1", Service("tcp", 80), fam)]
        assert not observed[("a1", "a3", Service("icmp"), fam)]
    assert not any(ok for (s, d, _, _), ok in observed.items() if s[0] != d[0])


@pytest.mark.slow
def test_a_rule_change_opens_and_closes_a_port(host: Host) -> None:
    a1, a3 = VMS[0], VMS[2]
    assert not host.passes(a1, a3, Service("tcp", 8080))
    rules = host.tenants.open(DB, 8080, WEB)
    host.apply_policy()
    assert host.passes(a1, a3, Service("tcp", 8080))
    assert host.passes(a1, a3, Service("tcp", 8080), family=6)
    assert not host.passes(VMS[3], a3, Service("tcp", 8080)), "tenant B is still kept out"
    host.tenants.close(rules)
    host.apply_policy()
    assert not host.passes(a1, a3, Service("tcp", 8080))
    assert not host.passes(a1, a3, Service("tcp", 8080), family=6)
