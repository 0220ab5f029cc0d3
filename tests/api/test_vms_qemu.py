"""A real VM through the API: created, stopped, started and deleted on QEMU.

The app runs with the ``qemu`` driver; every host of the ``small`` fabric maps to
one namespace of the QEMU lab with its bridge, so the VM's tap lands there. What
the API says is checked against what the hypervisor runs: the QEMU process, its
QMP status, and the NIC's MAC, which must be the port's.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.drivers.compute.base import PowerState
from fuyun.store.engine import Database
from tests.support.guest import Guest, wait_ready
from tests.support.qemu_lab import Lab

pytestmark = pytest.mark.slow


@pytest.fixture
def qemu_api(
    seeded_store: tuple[Path, str], tmp_path: Path, qemu_lab: Lab, guest: Guest
) -> Iterator[tuple[TestClient, dict[str, str], object]]:
    from fuyun.drivers.compute.qemu import HostConfig, QemuComputeDriver, QemuConfig

    template, token = seeded_store
    path = tmp_path / "fuyun.db"
    shutil.copy(template, path)
    db = Database(f"sqlite:///{path}")
    ns = next(iter(qemu_lab.hosts.values()))
    driver = QemuComputeDriver(
        QemuConfig(
            state_dir=tmp_path / "qemu",
            run_dir=qemu_lab.run_dir,
            kernel=guest.kernel,
            initrd=guest.initrd,
            append=guest.append,
            hosts={"*": HostConfig(netns=ns, plug="bridge:br0")},
        )
    )
    app = create_app(Settings(database_url=db.url), db=db, compute_driver=driver)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {token}"}, driver
    for host in (tmp_path / "qemu").iterdir() if (tmp_path / "qemu").exists() else ():
        for vm in host.iterdir():
            driver.delete(host.name, uuid.UUID(vm.name))
    db.dispose()


def test_a_real_vm_through_its_whole_life(qemu_api, qemu_lab: Lab) -> None:  # type: ignore[no-untyped-def]
    from fuyun.drivers.compute.qemu.monitor import session
    from fuyun.drivers.compute.qemu.process import Instance

    client, op, driver = qemu_api
    r = client.post("/api/v1/tenants", headers=op, json={"name": "qemu-co", "quotas": {}})
    assert r.status_code == 201, r.text
    tenant = r.json()["id"]
    r = client.post(
        "/api/v1/networks",
        headers=op,
        json={"name": "web", "cidr": "10.1.0.0/24", "site": "sz1", "tenant_id": tenant},
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/vms",
        headers=op,
        json={"name": "real", "flavor": "s1.small", "networks": ["web"], "tenant_id": tenant},
    )
    assert r.status_code == 201, r.text
    vm = r.json()["items"][0]
    vm_id = uuid.UUID(vm["id"])
    host = client.get(f"/api/v1/hosts/{vm['host_id']}", headers=op).json()["name"]
    [port] = client.get("/api/v1/ports", headers=op, params={"vm_id": vm["id"]}).json()["items"]
    inst = Instance(driver.config, host, vm_id)

    status = driver.status(host, vm_id)
    assert status is not None and status.power is PowerState.RUNNING
    wait_ready(inst.serial_log)
    with session(inst.qmp_socket) as mon:
        assert mon.cmd("query-status")["status"] == "running"
        [nic] = mon.cmd("query-rx-filter")
    assert nic["main-mac"] == port["mac"]
    first_pid = inst.pid()

    r = client.post(f"/api/v1/vms/{vm_id}/stop", headers=op)
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/vms/{vm_id}", headers=op).json()["state"] == "stopped"
    status = driver.status(host, vm_id)
    assert status is not None and status.power is PowerState.STOPPED
    assert first_pid is not None and not Path(f"/proc/{first_pid}").exists()

    r = client.post(f"/api/v1/vms/{vm_id}/start", headers=op)
    assert r.status_code == 200, r.text
    status = driver.status(host, vm_id)
    assert status is not None and status.power is PowerState.RUNNING
    assert inst.pid() != first_pid

    r = client.delete(f"/api/v1/vms/{vm_id}", headers=op)
    assert r.status_code in (200, 202, 204), r.text
    assert driver.status(host, vm_id) is None
    assert not inst.dir.exists()
