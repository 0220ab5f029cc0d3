"""The port map on a Linux-bridge host: bridges per segment, releases, anti-spoofing on the wire."""

from __future__ import annotations

import hashlib
import re

import pytest

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.linux import LinuxNetworkDriver
from fuyun.drivers.network.linux.bridges import peer_name, port_device
from tests.drivers.network.linux.lab import linux_lab, sh
from tests.drivers.network.linux.tenants import VMS, Tenants, Vm, ports
from tests.policy.tools import run, tool

A1, A2, A3, B1, _ = VMS


def _doc(generation: int, *vms: Vm) -> tuple[AppliedState, str]:
    doc = HostPorts(
        "lx1",
        tuple(
            PortBinding(str(v.port_id), v.name, v.name, str(v.tenant), "n", v.vlan, v.mac, (v.ip,))
            for v in vms
        ),
    )
    text = doc.to_json()
    digest = hashlib.sha256(text.encode()).hexdigest()
    return AppliedState("host", "lx1", "ports", generation, digest), text


def _masters(ns: str) -> dict[str, str]:
    return dict(re.findall(r"^\d+: (\S+?)@\S+ .* master (\S+)", sh("bridge", "link", ns=ns), re.M))


@pytest.mark.slow
def test_bridges_follow_the_port_map_and_missing_interfaces_refuse_it() -> None:
    with linux_lab() as lab:
        created = LinuxNetworkDriver("lx1", lab.host, create_ports=True)
        created.apply(*_doc(1, A1, A2, B1))
        dev = {v.name: port_device(str(v.port_id)) for v in VMS}
        assert _masters(lab.host) == {
            dev["a1"]: "fybr100",
            dev["a2"]: "fybr100",
            dev["b1"]: "fybr200",
        }
        peer = sh("ip", "-br", "link", "show", peer_name(dev["a1"]), ns=lab.host)
        assert A1.mac in peer, "a test VM's end carries the VM's MAC"
        created.apply(*_doc(2, A1))
        assert _masters(lab.host) == {dev["a1"]: "fybr100"}, "released ports, bridge 200 gone"
        assert "fybr200" not in sh("ip", "-br", "link", ns=lab.host)

        strict = LinuxNetworkDriver("lx1", lab.host)
        with pytest.raises(DriverError, match=dev["a3"]):
            strict.apply(*_doc(3, A1, A3))
        state = strict.observe("host", "lx1", "ports")
        assert state is not None and state.generation == 2
        assert _masters(lab.host) == {dev["a1"]: "fybr100"}


@pytest.mark.slow
def test_a_vm_cannot_send_from_a_mac_or_address_it_does_not_own() -> None:
    tool("iputils-ping", "ping")
    with linux_lab() as lab:
        a1 = lab.vm(str(A1.port_id), A1.mac, [A1.ip, "10.7.0.99"])
        lab.vm(str(A2.port_id), A2.mac, [A2.ip])
        driver = LinuxNetworkDriver("lx1", lab.host)

        def ping(source: str) -> bool:
            return (
                run(
                    ["ip", "netns", "exec", a1, "ping", "-c", "1", "-W", "1", "-I", source, A2.ip]
                ).returncode
                == 0
            )

        driver.apply(*_doc(1, A1, A2))  # no vswitch policy: only the port map's checks
        assert ping(A1.ip)
        assert not ping("10.7.0.99"), "a source address the port does not own"
        sh("ip", "link", "set", "eth0", "address", "fa:16:3e:66:66:66", ns=a1)
        sh("ip", "neigh", "flush", "all", ns=a1)
        assert not ping(A1.ip), "a MAC the port does not own"


@pytest.mark.slow
def test_tables_of_others_are_never_touched_nor_mistaken_for_drift() -> None:
    theirs = (
        "table inet operator {\n\tchain input {\n\t\ttype filter hook input priority 0; "
        "policy accept;\n\t\ttcp dport 22 accept\n\t}\n}\n"
        "table bridge other_agent {\n\tset macs {\n\t\ttype ether_addr\n\t}\n}\n"
    )
    with linux_lab() as lab:
        for v in VMS:
            lab.port(str(v.port_id))
        sh("nft", "-f", "-", ns=lab.host, stdin=theirs)
        before = sh("nft", "-a", "list", "ruleset", ns=lab.host)
        driver = LinuxNetworkDriver("lx1", lab.host)
        tenants = Tenants()
        driver.apply(*ports())
        driver.apply(*tenants.vswitch())
        driver.apply(*tenants.vswitch())  # a second generation replaces fuyun's table
        after = sh("nft", "-a", "list", "ruleset", ns=lab.host)
        for table in ("table inet operator", "table bridge other_agent"):
            assert _table(after, table) == _table(before, table), table
        assert "table inet fuyun" in after and "table bridge fuyun_ports" in after

        # The operator changing their own table is no drift of fuyun's; a driver that
        # starts afresh (a restarted agent) reads the same from the host alone.
        in_force = driver.observe("host", "lx1", "vswitch")
        assert in_force is not None and in_force.generation == 2
        sh(
            "nft",
            "add",
            "rule",
            "inet",
            "operator",
            "input",
            "tcp",
            "dport",
            "23",
            "drop",
            ns=lab.host,
        )
        assert driver.observe("host", "lx1", "vswitch") == in_force
        restarted = LinuxNetworkDriver("lx1", lab.host)
        assert restarted.observe("host", "lx1", "vswitch") == in_force
        assert restarted.observe("host", "lx1", "ports") == driver.observe("host", "lx1", "ports")


def _table(ruleset: str, head: str) -> str:
    start = ruleset.index(head)
    end = ruleset.index("\n}\n", start)
    return ruleset[start:end]
