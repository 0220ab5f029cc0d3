"""The lab carries what the control plane compiled: reachability on the wire = verify."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from fuyun.agent import AgentLoop
from fuyun.domain.qos import HostQos, PortQos
from fuyun.policy.ir import from_json
from fuyun.services.address_sets import hydrate_all
from fuyun.store.models import DeviceState
from fuyun.verify.evaluate import Service
from fuyun.verify.reachability import Reachability, analyse, reaches
from tests.support.labworld import LabWorld, Prober, Vm, wait_for

pytestmark = pytest.mark.slow
TCP = 8080


def _verify(world: LabWorld) -> Reachability:
    """verify's view: the stored policies with their address sets' members as stored now."""
    with world.db.read_session() as s:
        irs = [r.ir for r in s.scalars(select(DeviceState)) if r.ir and "ports" in r.ir]
        return analyse(hydrate_all(s, [from_json(ir) for ir in irs]))


def test_connectivity_matrix_equals_verify(lab: LabWorld) -> None:
    acme = lab.tenant("m-acme", "10.31.0.0/24")
    bolt = lab.tenant("m-bolt", "10.32.0.0/24")
    vms = [lab.vm(acme, f"a{i}", h) for i, h in enumerate(lab.hosts)]
    vms += [lab.vm(bolt, f"b{i}", h) for i, h in enumerate(lab.hosts)]
    lab.converge()
    for vm in vms:
        lab.serve(vm, [TCP])
    compiled = _verify(lab)
    verified, wire, intended = {}, {}, {}
    for src, dst in itertools.permutations(vms, 2):
        ids = (uuid.UUID(src.port_id), uuid.UUID(dst.port_id))
        key = (src.name, dst.name)
        intended[key] = (src.tenant == dst.tenant,) * 2
        verified[key] = (
            reaches(compiled, *ids, Service("icmp")),
            reaches(compiled, *ids, Service("tcp", TCP)),
        )
    pairs = list(itertools.permutations(vms, 2))
    with ThreadPoolExecutor(8) as pool:  # probes wait on drops: run them side by side
        probes = pool.map(lambda p: (lab.ping(*p), lab.connects(*p, TCP)), pairs)
        wire = {(s.name, d.name): r for (s, d), r in zip(pairs, probes, strict=True)}
    assert wire == intended
    assert wire == verified


def test_a_rule_added_and_removed_through_the_api_opens_and_closes_a_port(lab: LabWorld) -> None:
    t = lab.tenant("r-acme", "10.33.0.0/24")
    group = lab.call("POST", "/security-groups", json={"name": "svc", "tenant_id": t})
    server = lab.vm(t, "srv", lab.hosts[0], groups=["svc"])
    client = lab.vm(t, "cli", lab.hosts[3])
    lab.converge()
    lab.serve(server, [9090])
    assert not lab.connects(client, server, 9090, timeout_s=0.3)
    lab.converge()  # drift audits just done: the loop below starts with none due
    prober = Prober(lab, client, server, 9090)
    loop = AgentLoop(lab.agent, lab.hosts, interval_s=0.05)
    loop.start()
    try:
        rule = lab.call(
            "POST",
            f"/security-groups/{group['id']}/rules",
            json={"direction": "ingress", "protocol": "tcp", "port_min": 9090},
        )
        called = time.monotonic()  # the call has returned: the change is committed
        opened = prober.until("open", 5.0)
        assert opened is not None, "the port never opened"
        assert opened - called < 1.0, f"opened {opened - called:.2f} s after the call"
        lab.call("DELETE", f"/security-group-rules/{rule['id']}")
        called = time.monotonic()
        closed = prober.until("closed", 5.0)
        assert closed is not None, "the port never closed"
        assert closed - called < 1.0, f"closed {closed - called:.2f} s after the call"
    finally:
        loop.stop()


def _set_qos(lab: LabWorld, host: str, doc: HostQos) -> None:
    import hashlib

    text = doc.to_json()
    with lab.db.write_session() as s:
        row = s.scalar(
            select(DeviceState).where(
                DeviceState.device_type == "host",
                DeviceState.device_name == host,
                DeviceState.enforcement_point == "qos",
            )
        )
        if row is None:
            row = DeviceState(
                device_type="host",
                device_name=host,
                enforcement_point="qos",
                flavor="ovs",
                desired_generation=0,
                applied_generation=0,
            )
            s.add(row)
        row.rendered, row.digest = text, hashlib.sha256(text.encode()).hexdigest()
        row.desired_generation += 1


def _iperf(lab: LabWorld, client: Vm, server: Vm) -> float:
    srv = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(server), "iperf3", "-s", "-1", "-B", server.ip],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: lab.connects(client, server, 5201, timeout_s=0.3), 5.0)
        srv.wait(timeout=5)  # the probe consumed the one-off server
    except subprocess.TimeoutExpired:
        srv.kill()
        srv.wait()
    srv = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(server), "iperf3", "-s", "-1", "-B", server.ip],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _listening(lab, server), 5.0)
        out = subprocess.run(
            ["ip", "netns", "exec", lab.ns(client), "iperf3", "-c", server.ip, "-t", "4", "-J"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    finally:
        srv.kill()
        srv.wait()
    return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"])


def _listening(lab: LabWorld, vm: Vm) -> bool:
    out = subprocess.run(
        ["ip", "netns", "exec", lab.ns(vm), "ss", "-ltn"], capture_output=True, text=True
    ).stdout
    return ":5201" in out


def test_a_ten_megabit_ceiling_is_measured_within_ten_percent(lab: LabWorld) -> None:
    t = lab.tenant("q-acme", "10.34.0.0/24")
    sender = lab.vm(t, "tx", lab.hosts[0])
    receiver = lab.vm(t, "rx", lab.hosts[2])
    host = receiver.host
    binding = lab.binding(host, receiver.id)
    doc = HostQos(
        host=host,
        uplink_bps=1_000_000_000,
        ports=(
            PortQos(
                binding.port_id, binding.mac, binding.vlan, "rx", "q-acme", 1_000_000, 10_000_000
            ),
        ),
    )
    _set_qos(lab, host, doc)
    lab.converge()
    try:
        rate = _iperf(lab, sender, receiver)
        assert 9_000_000 <= rate <= 11_000_000, f"measured {rate / 1e6:.2f} Mbit/s"
    finally:
        _set_qos(lab, host, HostQos(host=host, uplink_bps=1_000_000_000))
        lab.converge()
