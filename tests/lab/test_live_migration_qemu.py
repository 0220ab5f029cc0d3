"""A real VM live-migrates through the API across the lab, with a prober pinging it.

The data plane is the lab (private Open vSwitch, VLAN-tagged ports, the agent's
anti-spoofing and policy flows); the compute is the ``qemu`` driver running the
tiny Debian guest in the lab's switch namespace, its tap on host A's bridge. A
namespace VM of the same tenant network, on a third host, pings the guest every
10 ms while ``POST /vms/{id}/migrate`` runs the ``vm.migrate`` workflow: the
destination's port, flows and QoS are converged on host B before QEMU moves the
guest there. Reported: probes lost, the longest gap, QEMU's figures and the
workflow's steps. Asserted: the guest answers from B afterwards, IP, MAC, security
groups and QoS are what they were, B enforces the port (tag, flows, shaping) and
A keeps nothing of it (no port, no tap, no flow naming its MAC or port).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from fuyun.domain.hostports import hypervisor_ifname
from fuyun.drivers.compute.base import PowerState
from fuyun.drivers.compute.qemu.process import Instance
from fuyun.drivers.network.ovs.daemon import ovs_env
from fuyun.lab import Manifest
from tests.services.migration.test_workflow import identity
from tests.support.guest import Guest, wait_ready
from tests.support.labworld import LabWorld, lab_fabric, lab_world, wait_for
from tests.support.qemu_lab import Prober

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qlab(tmp_path_factory: pytest.TempPathFactory, guest: Guest) -> Iterator[LabWorld]:
    hosts = sorted(h.name for h in lab_fabric().hosts)
    # A and B under different ToRs (the move crosses the aggregation); the prober on a
    # third host, a namespace.
    with lab_world(
        tmp_path_factory.mktemp("qlab"), qemu_hosts=frozenset({hosts[0], hosts[2]}), guest=guest
    ) as world:
        yield world


def _manifest(world: LabWorld) -> Manifest:
    m = world.lab.manifest()
    assert m is not None
    return m


def _ovs(world: LabWorld, *argv: str) -> str:
    root = world.lab.daemons(_manifest(world)).root
    done = subprocess.run(argv, env=ovs_env(root), capture_output=True, text=True, check=True)
    return done.stdout


def _ports(world: LabWorld, host: str) -> list[str]:
    bridge = world.lab.hosts()[host]
    db = world.lab.daemons(_manifest(world)).db
    return _ovs(world, "ovs-vsctl", f"--db={db}", "list-ports", bridge).split()


def _flows(world: LabWorld, host: str) -> str:
    return _ovs(world, "ovs-ofctl", "dump-flows", world.lab.hosts()[host])


def _ping(world: LabWorld, netns: str, ip: str, count: int = 1) -> bool:
    cmd = ["ip", "netns", "exec", netns, "ping", "-c", str(count), "-W", "1", "-q", ip]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def _link_exists(world: LabWorld, name: str) -> bool:
    netns = _manifest(world).switch_netns
    cmd = ["ip", "-n", netns, "link", "show", name]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def test_a_qemu_vm_moves_through_the_api_with_a_prober_pinging_it(
    qlab: LabWorld, record_property: Callable[[str, object], None]
) -> None:
    w = qlab
    a, prober_host, b = w.hosts[0], w.hosts[1], w.hosts[2]
    assert w.qemu is not None
    t = w.tenant("lm-acme", "10.41.0.0/24")
    group = w.call("POST", "/security-groups", json={"name": "web", "tenant_id": t})
    w.call(
        "POST",
        f"/security-groups/{group['id']}/rules",
        json={"direction": "ingress", "protocol": "icmp"},
    )
    w.call(
        "POST",
        "/qos-policies",
        json={"name": "gold", "guarantee_mbps": 100, "ceiling_mbps": 400, "tenant_id": t},
    )
    guest = w.vm(t, "guest", a, groups=["web"], qos_policy="gold")
    prober = w.vm(t, "prober", prober_host)
    w.converge()
    vm_id = uuid.UUID(guest.id)
    wait_ready(Instance(w.qemu.config, a, vm_id).serial_log)
    tap_a, tap_b = hypervisor_ifname(a, guest.port_id), hypervisor_ifname(b, guest.port_id)
    assert tap_a in _ports(w, a) and _link_exists(w, tap_a)
    mac = w.binding(a, guest.id).mac.lower()
    assert f"dl_src={mac}" in _flows(w, a), "the agent anti-spoofs the QEMU tap on A"
    assert wait_for(lambda: _ping(w, w.ns(prober), guest.ip), 120, 0.2) is not None, (
        "the guest never answered on A"
    )
    before = identity(w.db, vm_id)
    vm_before = w.call("GET", f"/vms/{guest.id}")

    probes = Prober(w.ns(prober), guest.ip, interval_ms=10)
    time.sleep(0.5)  # answers from A before the move, so the gap has a start
    result = w.call("POST", f"/vms/{guest.id}/migrate", json={"to": b})
    assert _ping(w, w.ns(prober), guest.ip, count=20), "the guest does not answer from B"
    seen = probes.stop()
    print(
        f"\nlive migration {a} -> {b} through the API: {seen.lost}/{seen.sent} probes lost, "
        f"longest gap {seen.longest_gap_ms:.0f} ms, QEMU total {result['stats']['total_ms']:.0f}"
        f" ms, downtime {result['stats']['downtime_ms']:.0f} ms"
    )
    for key, value in (
        ("probes_sent", seen.sent),
        ("probes_lost", seen.lost),
        ("longest_gap_ms", round(seen.longest_gap_ms)),
        *result["stats"].items(),
    ):
        record_property(key, value)  # in the JUnit report, beside the printed line
    assert result["state"] == "succeeded"
    assert result["plan"]["scope"] == "same-module"
    assert seen.received > 0 and seen.sent - seen.received < seen.sent // 2

    # The guest runs on B only; the API, the store and the hypervisor agree.
    vm_after = w.call("GET", f"/vms/{guest.id}")
    assert w.call("GET", f"/hosts/{vm_after['host_id']}")["name"] == b
    moved = {"host_id", "updated_at"}
    assert {k: v for k, v in vm_after.items() if k not in moved} == {
        k: v for k, v in vm_before.items() if k not in moved
    }
    st = w.qemu.status(b, vm_id)
    assert st is not None and st.power is PowerState.RUNNING
    assert w.qemu.status(a, vm_id) is None
    assert identity(w.db, vm_id) == before, "IP, MAC, groups and QoS are what they were"

    # B enforces the port; A, once the agent has applied the cleanup, holds nothing of it.
    w.converge()
    db = w.lab.daemons(_manifest(w)).db
    vsctl = ["ovs-vsctl", f"--db={db}"]
    assert tap_b in _ports(w, b) and _link_exists(w, tap_b)
    assert _ovs(w, *vsctl, "get", "Port", tap_b, "tag").strip() == str(w.binding(b, guest.id).vlan)
    assert f"dl_src={mac}" in _flows(w, b)
    assert _ovs(w, *vsctl, "get", "Port", tap_b, "qos").strip() != "[]", "shaped on B"
    assert tap_a not in _ports(w, a) and not _link_exists(w, tap_a)
    assert mac not in _flows(w, a), "no flow for the port is left on A"
    assert _ping(w, w.ns(prober), guest.ip, count=3)
