"""The qemu driver's ``ovs:`` plug against a private Open vSwitch.

ovsdb-server and ovs-vswitchd run from a private directory (the machine's OVS, if
any, is untouched), the switch inside a network namespace this test made, with
a userspace (``netdev``) bridge; QEMU runs in the same namespace, so the tap it
creates is the one the switch opens. The port must carry the NIC's VLAN as its
access tag and the external ids a Neutron-style agent reads, and go with the VM.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from fuyun.drivers.compute import InstanceSpec, NicSpec
from tests.support.capabilities import missing
from tests.support.qemu_lab import can_run_qemu, sh

pytestmark = pytest.mark.slow
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


@pytest.fixture(scope="module")
def private_ovs() -> Iterator[tuple[str, str, Path]]:
    why = can_run_qemu()
    if why:
        missing("QEMU", why)
    if shutil.which("ovs-vswitchd") is None or not SCHEMA.exists():
        missing("Open vSwitch", "openvswitch-switch is not installed")
    tag = uuid.uuid4().hex[:6]
    root = Path(tempfile.mkdtemp(prefix=f"fyo{tag}", dir="/tmp"))
    netns = f"fyo{tag}"
    env = {**os.environ, **{k: str(root) for k in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR")}}
    db = f"unix:{root / 'db.sock'}"

    def run(*argv: str) -> None:
        subprocess.run(argv, env=env, check=True, capture_output=True)

    sh("ip", "netns", "add", netns)
    try:
        run("ovsdb-tool", "create", str(root / "conf.db"), str(SCHEMA))
        run("ovsdb-server", f"--remote=punix:{root / 'db.sock'}", "--detach",
            f"--pidfile={root / 'ovsdb-server.pid'}", f"--log-file={root / 'ovsdb.log'}",
            str(root / "conf.db"))  # fmt: skip
        run("ovs-vsctl", f"--db={db}", "--no-wait", "init")
        run("ip", "netns", "exec", netns, "ovs-vswitchd", db, "--detach",
            f"--pidfile={root / 'ovs-vswitchd.pid'}",
            f"--log-file={root / 'vswitchd.log'}")  # fmt: skip
        run("ovs-vsctl", f"--db={db}", "add-br", "br-int", "--", "set", "Bridge", "br-int",
            "datapath_type=netdev")  # fmt: skip
        yield netns, db, root
    finally:
        for name in ("ovs-vswitchd", "ovsdb-server"):
            with suppress(FileNotFoundError, ProcessLookupError, ValueError):
                os.kill(int((root / f"{name}.pid").read_text()), signal.SIGTERM)
        with suppress(RuntimeError):
            sh("ip", "netns", "del", netns)
        shutil.rmtree(root, ignore_errors=True)


def test_ovs_plug_tags_the_port_with_the_vlan_and_removes_it_with_the_vm(
    private_ovs: tuple[str, str, Path],
) -> None:
    from fuyun.drivers.compute.qemu import HostConfig, QemuComputeDriver, QemuConfig
    from fuyun.drivers.compute.qemu.process import Instance

    netns, db, root = private_ovs
    driver = QemuComputeDriver(
        QemuConfig(
            state_dir=root / "qemu",
            run_dir=root,
            accel="tcg",
            hosts={"ovs-h1": HostConfig(netns=netns, plug="ovs:br-int", ovsdb=db)},
        )
    )
    vm_id, port_id = uuid.uuid4(), uuid.uuid4()
    nic = NicSpec(port_id, "52:54:00:0a:0b:0c", 123, "tenant-net")
    driver.create(InstanceSpec(vm_id, "ovs-vm", "ovs-h1", 1, 64, 1, "none", (nic,)))
    tap = Instance(driver.config, "ovs-h1", vm_id).tap(nic)
    try:
        vsctl = ["ovs-vsctl", f"--db={db}"]
        assert sh(*vsctl, "get", "Port", tap, "tag").strip() == "123"
        ids = sh(*vsctl, "get", "Interface", tap, "external_ids")
        assert f'iface-id="{port_id}"' in ids and '"52:54:00:0a:0b:0c"' in ids
        assert str(vm_id) in ids
        assert tap in sh(*vsctl, "list-ports", "br-int").split()
        driver.stop("ovs-h1", vm_id)
        assert tap not in sh(*vsctl, "list-ports", "br-int").split()
        driver.start("ovs-h1", vm_id)
        assert sh(*vsctl, "get", "Port", tap, "tag").strip() == "123"
    finally:
        driver.delete("ovs-h1", vm_id)
    assert tap not in sh("ovs-vsctl", f"--db={db}", "list-ports", "br-int").split()
