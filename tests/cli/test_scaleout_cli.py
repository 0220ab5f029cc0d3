"""``fuyun serve --workers N`` and ``fuyun worker`` as real processes on PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fuyun.cli.main import app
from fuyun.store.engine import Database
from tests.support.live import free_port, wait_until_up


def test_serve_workers_needs_postgresql(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--workers", "2"],
        env={"FUYUN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"},
    )
    assert result.exit_code == 2
    assert "workers" in result.output


def test_a_bad_config_file_exits_2_naming_it(tmp_path: Path) -> None:
    conf = tmp_path / "fuyun.toml"
    conf.write_text("colour = 'blue'\n")
    for argv in (["serve"], ["worker"]):
        result = CliRunner().invoke(app, argv, env={"FUYUN_CONFIG": str(conf)})
        assert result.exit_code == 2, argv
        assert "colour" in result.output


@pytest.mark.slow
def test_serve_with_two_api_processes_and_a_separate_worker(
    pg_db: Database, tmp_path: Path
) -> None:
    port, worker_metrics = free_port(), free_port()
    env = {
        **os.environ,
        "FUYUN_DATABASE_URL": pg_db.url,
        "FUYUN_WORKFLOW_RUNNER": "queue",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "FUYUN_ARGON2_PROFILE": "fast",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    cli = [sys.executable, "-m", "fuyun.cli.main"]
    with serve_log.open("wb") as sink:
        serve = subprocess.Popen(
            [*cli, "serve", "--workers", "2", "--port", str(port), "--fabric", "small"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    with worker_log.open("wb") as sink:
        worker = subprocess.Popen(
            [*cli, "worker", "--concurrency", "2", "--metrics-port", str(worker_metrics)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, serve, timeout_s=120)
        token = json.loads((tmp_path / "cfg" / "fuyun" / "credentials").read_text())["token"]
        http = httpx.Client(
            base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        tenant = http.post("/tenants", json={"name": "studio"}).json()
        for i in range(6):  # spread over both API processes; the worker runs them all
            r = http.post(
                "/vms", json={"name": f"v{i}", "flavor": "s1.small", "tenant_id": tenant["id"]}
            )
            assert r.status_code == 201, r.text
            assert r.json()["items"][0]["state"] == "active"
        metrics = httpx.get(f"{url}/metrics").text
        assert re.search(
            r'fuyun_http_request_duration_seconds_count\{[^}]*route="/api/v1/vms"', metrics
        )
        assert 'fuyun_workflow_queue_depth{state="pending"} 0.0' in metrics
        # The worker ran the six creates: its own page counts them and their durations.
        ran = httpx.get(f"http://127.0.0.1:{worker_metrics}/metrics").text
        assert 'fuyun_workflows_finished_total{kind="vm.create",state="succeeded"} 6.0' in ran
        assert re.search(
            r'fuyun_workflow_duration_seconds_count\{kind="vm.create",state="succeeded"\} 6\.0',
            ran,
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        assert "stopped after" in worker_log.read_text()
    finally:
        for proc in (worker, serve):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert "6 workflows finished" in worker_log.read_text()
