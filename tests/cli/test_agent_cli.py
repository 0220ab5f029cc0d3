"""``fuyun agent`` and ``fuyun serve --lab`` converge the lab from the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fuyun.api.app import create_app
from fuyun.cli.main import _start_lab
from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.fabric.yamlio import dump_fabric
from fuyun.lab import Lab
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState
from tests.support.labworld import lab_fabric, require_lab, wait_for

pytestmark = pytest.mark.slow


def _store(tmp_path: Path) -> tuple[Database, str, str]:
    spec = lab_fabric(tors=1, hosts_per_tor=1)
    fabric = tmp_path / "fabric.yaml"
    fabric.write_text(dump_fabric(spec))
    db = Database(f"sqlite:///{tmp_path / 'fuyun.db'}")
    result = bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric=str(fabric))
    return db, result.token, spec.hosts[0].name


def _vm(db: Database, token: str, host: str) -> None:
    settings = Settings(database_url=db.url)
    client = TestClient(create_app(settings, db=db, compute_driver=FakeComputeDriver()))
    op = {"Authorization": f"Bearer {token}"}
    t = client.post("/api/v1/tenants", headers=op, json={"name": "cli-acme"}).json()["id"]
    r = client.post(
        "/api/v1/networks",
        headers=op,
        json={"name": "net", "cidr": "10.51.0.0/24", "site": "sz1", "tenant_id": t},
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/vms",
        headers=op,
        json={"name": "v", "flavor": "s1.small", "networks": ["net"], "host": host, "tenant_id": t},
    )
    assert r.status_code == 201, r.text


def _converged(db: Database, host: str) -> bool:
    with db.read_session() as s:
        rows = s.execute(
            select(DeviceState.desired_generation, DeviceState.applied_generation).where(
                DeviceState.device_name == host
            )
        ).all()
    return len(rows) == 2 and all(d == a for d, a in rows)


def test_the_agent_command_converges_its_host(tmp_path: Path) -> None:
    require_lab()
    db, token, host = _store(tmp_path)
    lab = Lab(tmp_path / "lab")
    try:
        lab.up(lab_fabric(tors=1, hosts_per_tor=1))
        _vm(db, token, host)
        assert not _converged(db, host)
        fuyun = Path(sys.executable).with_name("fuyun")
        agent = subprocess.Popen(
            [str(fuyun), "agent", "--host", host, "--lab", str(lab.root), "--interval", "0.1"],
            env={**os.environ, "FUYUN_DATABASE_URL": db.url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert wait_for(lambda: _converged(db, host), 60) is not None
            assert len(lab.status().vm_namespaces) == 1
        finally:
            agent.send_signal(signal.SIGTERM)
            out, _ = agent.communicate(timeout=30)
        assert agent.returncode == 0, out
        assert f"agent for {host} with the ovs driver" in out
    finally:
        lab.down()
        db.dispose()


def test_serve_lab_brings_the_lab_up_and_drives_it(tmp_path: Path) -> None:
    require_lab()
    db, token, host = _store(tmp_path)
    lab, loop = _start_lab(db, tmp_path / "lab")
    try:
        assert lab.hosts() == {host: lab.hosts()[host]}
        _vm(db, token, host)
        assert wait_for(lambda: _converged(db, host), 60) is not None
        assert len(lab.status().vm_namespaces) == 1
    finally:
        loop.stop()
        loop.agent.driver.close()  # type: ignore[attr-defined]
        lab.down()
        db.dispose()
