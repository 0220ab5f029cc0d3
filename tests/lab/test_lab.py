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
        status = lab.status()
        assert status.up and status.hosts == 1 and status.ports == {host: 1}
        assert status.vm_namespaces == [lab.vm_namespace(device_name(uuid.UUID(port_id)))]
        pids = [p for p in status.daemons.values() if p]
        assert len(pids) == 2
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
