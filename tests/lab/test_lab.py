"""Lab life cycle: up builds the fabric, status shows it, down leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from pyroute2 import netns

from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.drivers.network import AppliedState
from fuyun.lab import Lab, plan
from fuyun.netsvc.scope import DhcpScope, Reservation, SubnetScope
from fuyun.netsvc.service import NetworkService, Segment
from fuyun.policy.ir import device_name
from tests.support.labworld import lab_fabric, require_lab


def test_plan_trunks_each_host_to_its_tor_and_each_tor_to_one_aggregation() -> None:
    spec = lab_fabric(tors=2, hosts_per_tor=2)
    layout = plan(spec, "ab12")
    roles = sorted(b.role for b in layout.bridges)
    assert roles == ["aggregation", "host", "host", "host", "host", "tor", "tor"]
    assert all(len(b.name) <= 15 and b.name.startswith("flab12") for b in layout.bridges)
    uppers = {lower: upper for lower, upper in layout.trunks}
    hosts = layout.host_bridges()
    assert set(hosts) == {h.name for h in spec.hosts}
    tors = {uppers[b] for b in hosts.values()}
    assert len(tors) == 2 and len({uppers[t] for t in tors}) == 1
    # The network node attaches where every host of the module is reached: the aggregation.
    assert layout.service_bridges == ((spec.modules[0].name, uppers[next(iter(tors))]),)


@pytest.mark.slow
def test_down_leaves_no_namespace_link_or_process(tmp_path: Path) -> None:
    require_lab()
    spec = lab_fabric(tors=1, hosts_per_tor=1)
    lab = Lab(tmp_path / "lab")
    try:
        manifest = lab.up(spec)
        host = spec.hosts[0].name
        port_id = str(uuid.uuid4())
        doc = HostPorts(
            host,
            (PortBinding(port_id, "", "vm", "t", "n", 100, "fa:16:3e:00:00:01", ("10.9.0.2",)),),
        )
        driver = lab.driver()
        try:
            driver.apply(AppliedState("host", host, "ports", 1, "x"), doc.to_json())
        finally:
            driver.close()
        node = lab.network_node()
        try:  # a network's router and dnsmasq, as the network-services agent makes them
            node.apply(_service(spec.modules[0].name))
        finally:
            node.close()  # leaves dnsmasq running, as a killed agent would
        status = lab.status()
        assert status.up and status.hosts == 1 and status.ports == {host: 1}
        assert status.vm_namespaces == [lab.vm_namespace(device_name(uuid.UUID(port_id)))]
        assert len(status.routers) == 1 and status.dhcp_servers == 1
        dnsmasq = int(next((tmp_path / "lab" / "netsvc").glob("*/*/dnsmasq.pid")).read_text())
        pids = [p for p in status.daemons.values() if p] + [dnsmasq]
        assert len(pids) == 3
    finally:
        removed = lab.down()
    assert any(r.startswith("namespace") for r in removed)
    assert not [n for n in netns.listnetns() if n.startswith(f"fuyun-lab-{manifest.tag}")]
    for pid in pids:
        assert not _alive(pid), f"process {pid} survived lab down"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"fl{manifest.tag}" not in links and "fy" + port_id.replace("-", "")[:11] not in links
    assert not (tmp_path / "lab").exists()
    assert not lab.status().up and lab.down() == []


def _service(module: str) -> NetworkService:
    scope = DhcpScope(
        network_id=str(uuid.uuid4()),
        network="n",
        tenant="t",
        vlans=(100,),
        zone="n.t.fuyun.internal",
        mtu=1500,
        enabled=True,
        subnets=(SubnetScope("10.9.0.0/24", "10.9.0.1"),),
        reservations=(Reservation("fa:16:3e:00:00:01", "10.9.0.2", "vm"),),
        dns_server="10.9.0.1",
    )
    return NetworkService(
        scope.network_id, 1, str(uuid.uuid4()), module, (Segment(100, scope.subnets),), scope
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
