"""The host agent converges on level and repairs drift made by hand on a real switch."""

from __future__ import annotations

import re
import subprocess

import pytest
from sqlalchemy import select

from fuyun.agent import HostAgent, HostDocument
from fuyun.domain.errors import DriverError
from fuyun.drivers.network import AppliedState
from fuyun.drivers.network.sim import SimNetworkDriver
from fuyun.services.hoststate import host_documents
from fuyun.store.models import DeviceState
from tests.support.labworld import LabWorld, wait_for


class _Source:
    def __init__(self, docs: list[HostDocument]) -> None:
        self.docs = docs
        self.reports: list[tuple[str, int, tuple[str, ...]]] = []

    def desired(self, host: str) -> list[HostDocument]:
        return list(self.docs)

    def report(
        self, host: str, ep: str, generation: int, digest: str, drift: tuple[str, ...]
    ) -> None:
        self.reports.append((ep, generation, drift))


def test_applies_only_what_lags_and_reports_once() -> None:
    driver = SimNetworkDriver()
    source = _Source([HostDocument("ports", 1, "d1", "{}"), HostDocument("vswitch", 2, "d2", "")])
    agent = HostAgent(source, driver)
    first = agent.reconcile("h1")
    assert first.applied == ["ports", "vswitch"] and driver.applies == 2
    assert agent.reconcile("h1").applied == [] and driver.applies == 2
    assert source.reports == [("ports", 1, ()), ("vswitch", 2, ())]
    source.docs[1] = HostDocument("vswitch", 3, "d3", "")
    assert agent.reconcile("h1").applied == ["vswitch"]


def test_a_failing_document_does_not_stop_the_others_and_is_retried() -> None:
    class Flaky(SimNetworkDriver):
        fail = True

        def apply(self, state: AppliedState, rendered: str) -> None:
            if state.enforcement_point == "ports" and self.fail:
                raise DriverError("port refused")
            super().apply(state, rendered)

    driver = Flaky()
    source = _Source([HostDocument("ports", 1, "d1", "{}"), HostDocument("qos", 1, "q", "{}")])
    agent = HostAgent(source, driver)
    result = agent.reconcile("h1")
    assert result.errors == {"ports": "port refused"} and "qos" in result.applied
    driver.fail = False
    assert agent.reconcile("h1").applied == ["ports"]


def test_a_host_without_a_policy_document_gets_the_pass_through_policy() -> None:
    driver = SimNetworkDriver()
    agent = HostAgent(_Source([]), driver)
    assert agent.reconcile("h1").applied == ["vswitch"]
    assert driver.config("host", "h1", "vswitch") == ""


# -- on the lab ---------------------------------------------------------------------------


def _ofctl(lab: LabWorld, command: str, bridge: str, *args: str) -> str:
    d = lab.lab.daemons(lab.lab.manifest())  # type: ignore[arg-type]
    cmd = ["ovs-ofctl", "-O", "OpenFlow13", command, f"unix:{d.root}/{bridge}.mgmt", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def _state(lab: LabWorld, bridge: str) -> tuple[list[str], dict[str, object]]:
    flows = sorted(
        line.strip()
        for line in _ofctl(lab, "dump-flows", bridge, "--no-stats").splitlines()
        if "actions" in line
    )
    ports = {n: (p.tag, p.ofport, p.qos) for n, p in lab.driver.ovsdb.ports(bridge).items()}
    return flows, ports


def _durations(lab: LabWorld, bridge: str) -> dict[str, float]:
    out = {}
    for line in _ofctl(lab, "dump-flows", bridge).splitlines():
        m = re.search(r"duration=([\d.]+)s", line)
        if m:
            key = re.sub(r"(duration|n_packets|n_bytes|idle_age)=[^,]*, ?", "", line).strip()
            out[key] = float(m.group(1))
    return out


@pytest.mark.slow
def test_reapplying_unchanged_documents_changes_nothing_on_the_switch(lab: LabWorld) -> None:
    t = lab.tenant("i-acme", "10.41.0.0/24")
    vm = lab.vm(t, "one", lab.hosts[1])
    lab.converge()
    bridge = lab.bridge(vm)
    before, durations = _state(lab, bridge), _durations(lab, bridge)
    # The documents as the agent reads them (address sets hydrated into the policy).
    docs = host_documents(lab.db, vm.host)
    for d in docs:  # a full re-apply of every document, as after an agent restart
        state = AppliedState("host", vm.host, d.enforcement_point, d.generation, d.digest)
        lab.driver.apply(state, d.rendered)
    assert _state(lab, bridge) == before
    after = _durations(lab, bridge)
    assert after.keys() == durations.keys()
    assert all(after[k] >= durations[k] for k in after), "a flow was replaced"


@pytest.mark.slow
def test_the_agent_repairs_a_deleted_flow_and_a_retagged_port(lab: LabWorld) -> None:
    t = lab.tenant("d-acme", "10.42.0.0/24")
    vm = lab.vm(t, "victim", lab.hosts[2])
    peer = lab.vm(t, "peer", lab.hosts[0])
    lab.converge()
    assert lab.ping(peer, vm)
    bridge = lab.bridge(vm)
    binding = lab.binding(vm.host, vm.id)
    ofport = lab.driver.ovsdb.ports(bridge)[vm.ifname].ofport
    _ofctl(lab, "del-flows", bridge, f"table=0,in_port={ofport},dl_src={binding.mac}")
    assert not lab.ping(peer, vm), "without its port-security flow the VM is cut off"
    result = lab.agent.reconcile(vm.host, audit=True)
    assert "ports" in result.applied and any("flow" in d for d in result.drift["ports"])
    assert lab.ping(peer, vm)
    with lab.db.read_session() as s:
        drift = s.scalar(
            select(DeviceState.drift).where(
                DeviceState.device_name == vm.host, DeviceState.enforcement_point == "ports"
            )
        )
    assert drift and any("flow" in d for d in drift["differences"])

    lab.driver.ovsdb.set_port(
        vm.ifname,
        tag=binding.vlan + 7,
        iface_ids={**lab.driver.ovsdb.ports(bridge)[vm.ifname].iface_ids},
    )
    # ovs-vswitchd applies a tag written to its database a moment later, and forwarding
    # already cached may carry a packet or two meanwhile: wait for it to take hold.
    cut_off = wait_for(lambda: not lab.ping(peer, vm), timeout_s=5.0)
    assert cut_off is not None, "on another VLAN the VM is unreachable"
    result = lab.agent.reconcile(vm.host, audit=True)
    assert any("tag" in d for d in result.drift["ports"])
    assert lab.driver.ovsdb.ports(bridge)[vm.ifname].tag == binding.vlan
    assert lab.ping(peer, vm)
    assert lab.agent.reconcile(vm.host, audit=True).drift == {}
