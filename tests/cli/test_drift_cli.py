"""``fuyun drift`` against a real server running the ``qemu`` driver.

The server boots VMs as QEMU processes (no guest OS: the contract needs none);
the test kills one behind the control plane's back, and the CLI must see it
die, repair it, and refuse nonsense with exit code 2.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuyun.cli.main import app
from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database
from tests.support.live import api_servers
from tests.support.qemu_lab import Lab

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qemu_server(
    tmp_path_factory: pytest.TempPathFactory, qemu_lab: Lab
) -> Iterator[tuple[dict[str, str], Path]]:
    from fuyun.drivers.compute.qemu import HostConfig, QemuComputeDriver, QemuConfig

    base = tmp_path_factory.mktemp("drift-cli")
    db = Database(f"sqlite:///{base / 'fuyun.db'}")
    token = bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small").token
    db.dispose()
    state, ns = base / "qemu", next(iter(qemu_lab.hosts.values()))
    env = {
        "FUYUN_ARGON2_PROFILE": "fast",
        "FUYUN_COMPUTE_DRIVER": "qemu",
        "FUYUN_QEMU_STATE_DIR": str(state),
        "FUYUN_QEMU_RUN_DIR": str(qemu_lab.run_dir),
        "FUYUN_QEMU_ACCEL": "tcg",
        "FUYUN_QEMU_HOSTS": json.dumps({"*": {"netns": ns, "plug": "none"}}),
    }
    try:
        with api_servers(f"sqlite:///{base / 'fuyun.db'}", env=env) as urls:
            yield (
                {
                    "FUYUN_URL": urls[0],
                    "FUYUN_TOKEN": token,
                    "XDG_CONFIG_HOME": str(base / "cfg"),
                },
                state,
            )
    finally:  # the server is gone; its QEMU processes are not
        cleaner = QemuComputeDriver(
            QemuConfig(state_dir=state, run_dir=qemu_lab.run_dir, hosts={"*": HostConfig(ns)})
        )
        for host in state.iterdir() if state.exists() else ():
            for vm in host.iterdir():
                try:
                    cleaner.delete(host.name, uuid.UUID(vm.name))
                except Exception:  # never leave a QEMU process behind
                    with suppress(FileNotFoundError, ProcessLookupError, ValueError):
                        os.kill(int((vm / "pid").read_text()), signal.SIGKILL)
                    raise


def fuyun(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_drift_seen_repaired_and_refused_by_cli(qemu_server: tuple[dict[str, str], Path]) -> None:
    env, state = qemu_server
    code, text = fuyun(env, "tenant", "create", "drifty", "--vms", "5", "--vcpus", "20")
    assert code == 0, text
    code, text = fuyun(
        env, "vm", "create", "d1", "--flavor", "s1.small", "--tenant", "drifty", "--json"
    )
    assert code == 0, text
    vm_id = json.loads(text)["items"][0]["id"] if text.lstrip().startswith("{") else None
    [pidfile] = list(state.glob("*/*/pid"))
    host, vm_id = pidfile.parent.parent.name, vm_id or pidfile.parent.name
    assert pidfile.parent.name == vm_id

    code, text = fuyun(env, "drift")
    assert code == 0 and "no drift" in text, text
    assert "tcg (configured)" in text
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    code, text = fuyun(env, "drift", "--json")
    assert code == 0, text
    [d] = json.loads(text)
    assert (d["kind"], d["host"], d["vm_id"]) == ("died", host, vm_id)

    code, text = fuyun(env, "drift", "adopt", host, vm_id, "--tenant", "drifty")
    assert code == 2 and "tenant" in text  # only unknown instances take a tenant
    code, text = fuyun(env, "drift", "repair", host, vm_id)
    assert code == 0, text
    code, text = fuyun(env, "drift", "--host", host)
    assert code == 0 and "no drift" in text, text
    code, text = fuyun(env, "drift", "repair", host, "not-a-uuid")
    assert code == 2 and "vm_id" in text
