"""A real QEMU guest takes its IPAM address from the lab's DHCP service.

A port is allocated through the API (IPAM picks its MAC and address); the network
node serves the network as it serves every lab network (agent, not test). The tiny
guest boots with ``fuyun.dhcp=1``, so its init runs busybox ``udhcpc`` on the NIC
that carries the port's MAC; QEMU's tap is an access port on the network's VLAN on
the module's service bridge, the segment the tenant's router and dnsmasq sit on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from fuyun.drivers.compute import InstanceSpec, NicSpec
from fuyun.drivers.compute.qemu import HostConfig, QemuComputeDriver, QemuConfig
from fuyun.drivers.compute.qemu.process import Instance
from fuyun.netsvc.service import router_name
from tests.support.guest import DHCP_FLAG, LEASE, Guest, wait_ready
from tests.support.labworld import LabWorld

pytestmark = pytest.mark.slow


def _lease(serial: Path, timeout_s: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = serial.read_bytes().decode(errors="replace") if serial.exists() else ""
        found = re.search(rf"{LEASE} (\S+) (\S+)", text)
        if found:
            return [found.group(1), found.group(2)]
        time.sleep(0.1)
    raise AssertionError(f"no lease on the console: {text[-400:]!r}")


def test_a_qemu_guest_gets_its_ipam_address_from_the_network_dhcp(
    lab: LabWorld, guest: Guest, tmp_path: Path
) -> None:
    t = lab.tenant("ns-qemu", "10.46.0.0/24")
    net = lab.call("GET", f"/networks?tenant_id={t}&name_prefix=net")["items"][0]
    port = lab.call("POST", "/ports", json={"network_id": net["id"], "name": "guest0"})
    lab.converge()  # the network node serves the new reservation
    scope = lab.call("GET", f"/networks/{net['id']}/dhcp")
    assert any(r["mac"] == port["mac"] for r in scope["reservations"])
    m = lab.lab.manifest()
    assert m is not None
    service_bridge = m.service_bridges[next(iter(m.service_bridges))]
    host = "lab-service"
    run_dir = Path(tempfile.mkdtemp(prefix="fyqd", dir="/tmp"))  # short: QMP socket paths
    driver = QemuComputeDriver(
        QemuConfig(
            state_dir=tmp_path / "qemu",
            run_dir=run_dir,
            kernel=guest.kernel,
            initrd=guest.initrd,
            append=f"{guest.append} {DHCP_FLAG}",
            accel="tcg",
            hosts={
                host: HostConfig(
                    netns=m.switch_netns,
                    plug=f"ovs:{service_bridge}",
                    ovsdb=lab.lab.env()["FUYUN_OVS_DB"],
                )
            },
        )
    )
    vm_id = uuid.uuid4()
    nic = NicSpec(uuid.UUID(port["id"]), port["mac"], scope["vlans"][0], "net")
    driver.create(InstanceSpec(vm_id, "guest0", host, 1, 128, 1, "tiny", (nic,)))
    try:
        inst = Instance(driver.config, host, vm_id)
        ip, router = _lease(inst.serial_log)
        wait_ready(inst.serial_log)
        assert ip == port["ips"][0]
        assert router == scope["subnets"][0]["gateway"]
        # The guest answers at that address on its segment: from its tenant's gateway.
        ns = f"{m.router_prefix}{router_name(net['vrf_id'])}"
        ping = ["ip", "netns", "exec", ns, "ping", "-c", "3", "-W", "2", "-q", ip]
        assert subprocess.run(ping, capture_output=True, check=False).returncode == 0
    finally:
        driver.delete(host, vm_id)
        lab.call("DELETE", f"/ports/{port['id']}")
        shutil.rmtree(run_dir, ignore_errors=True)
