"""The sFlow agent the driver configures exports to the configured collector."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from sqlalchemy import select

from fuyun.drivers.network import AppliedState
from fuyun.drivers.network.ovs.ovsdb import SflowConfig
from fuyun.store.models import DeviceState
from tests.support.labworld import LabWorld

COLLECTOR = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
print("ready", flush=True)
data, _ = s.recvfrom(65535)
print(int.from_bytes(data[:4], "big"), len(data), flush=True)
"""


@pytest.mark.slow
def test_sflow_datagrams_reach_the_configured_collector(lab: LabWorld) -> None:
    t = lab.tenant("s-acme", "10.43.0.0/24")
    a = lab.vm(t, "a", lab.hosts[1])
    b = lab.vm(t, "b", lab.hosts[3])
    lab.converge()
    port = random.randint(20000, 40000)
    switch_ns = lab.lab.manifest().switch_netns  # type: ignore[union-attr]
    collector = subprocess.Popen(
        ["ip", "netns", "exec", switch_ns, sys.executable, "-c", COLLECTOR, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    sflow = SflowConfig((f"127.0.0.1:{port}",), sampling=1, polling=1, agent="")
    driver = lab.lab.driver(sflow=sflow)
    try:
        assert collector.stdout and collector.stdout.readline().strip() == "ready"
        with lab.db.read_session() as s:
            row = s.scalars(
                select(DeviceState).where(
                    DeviceState.device_name == a.host, DeviceState.enforcement_point == "ports"
                )
            ).one()
            state = AppliedState("host", a.host, "ports", row.desired_generation, row.digest)
            rendered = row.rendered
        driver.apply(state, rendered)
        assert driver.ovsdb.sflow(lab.lab.hosts()[a.host]) == sflow
        assert driver.drift(state, rendered) == ()
        for _ in range(3):
            lab.ping(a, b)
        version, size = map(int, collector.stdout.readline().split())
        assert version == 5 and size > 28, "an sFlow v5 datagram"
    finally:
        collector.kill()
        collector.wait()
        driver.close()
    # The session's agent runs without sFlow: its next audit takes the row away again.
    result = lab.agent.reconcile(a.host, audit=True)
    assert any("sFlow" in d for d in result.drift["ports"])
    assert lab.driver.ovsdb.sflow(lab.lab.hosts()[a.host]) is None
