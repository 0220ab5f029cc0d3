"""``fuyun collector`` and ``fuyun traffic`` against a real server and store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fuyun.store.engine import Database
from fuyun.telemetry.bindings import load_bindings
from tests.cli.test_cli_e2e import fuyun
from tests.support.live import cli_server, free_port
from tests.telemetry import synth


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir, config = tmp_path_factory.mktemp("traffic-cli"), tmp_path_factory.mktemp("cfg")
    with cli_server(workdir, config, with_database=True) as env:
        yield env


def _datagrams(db_url: str, tenant: str) -> list[bytes]:
    db = Database(db_url)
    try:
        bindings = [b for b in load_bindings(db)[0] if b.tenant == tenant]
    finally:
        db.dispose()
    out = []
    for n, b in enumerate(bindings):
        frame = synth.ether(b.mac, "02:ee:00:00:00:01", b.ips[0], "203.0.113.9")
        rec = synth.raw_header_record(frame, frame_length=996)
        out.append(synth.datagram([synth.flow_sample([rec], rate=100 * (n + 1))] * 4, seq=n))
    return out


def test_collector_replays_a_capture_and_traffic_shows_it(
    server: dict[str, str], tmp_path: Path
) -> None:
    assert fuyun(server, "tenant", "create", "tc-studio", "--vms", "5")[0] == 0
    code, text = fuyun(
        server,
        "network",
        "create",
        "web",
        "--cidr",
        "10.71.0.0/24",
        "--tenant",
        "tc-studio",
        "--module",
        "sz1-m01",
    )
    assert code == 0, text
    code, text = fuyun(
        server,
        "vm",
        "create",
        "api",
        "--flavor",
        "s1.small",
        "--count",
        "2",
        "--tenant",
        "tc-studio",
        "--network",
        "web",
    )
    assert code == 0, text
    capture = tmp_path / "sflow.pcap"
    synth.write_pcap(str(capture), _datagrams(server["FUYUN_DATABASE_URL"], "tc-studio"))
    code, text = fuyun(server, "collector", "--pcap", str(capture))
    assert code == 0, text
    assert "2 datagrams (0 malformed), 8 flow" in text and "8 attributed" in text

    code, text = fuyun(server, "traffic", "--tenant", "tc-studio", "--bucket", "10s", "--json")
    assert code == 0, text
    report = json.loads(text)
    tx = sorted(e["tx_bytes"] for e in report["top"])
    assert tx == [4 * 1000 * 100, 4 * 1000 * 200]  # 4 samples x 1000 B x rate
    code, text = fuyun(server, "traffic", "--by", "tenant", "--bucket", "1h", "--top", "3")
    assert code == 0 and "tc-studio" in text
    code, text = fuyun(
        server, "traffic", "quality", "--tenant", "tc-studio", "--bucket", "10s", "--json"
    )
    assert code == 0, text
    quality = {q["vm"]: q for q in json.loads(text)}
    assert set(quality) == {"api-1", "api-2"}
    assert all(q["guaranteed_bps"] == 100_000_000 for q in quality.values())
    code, text = fuyun(server, "traffic", "alerts")
    assert code == 0, text


def test_bad_input_exits_2_naming_the_field(server: dict[str, str], tmp_path: Path) -> None:
    code, text = fuyun(server, "traffic", "--bucket", "5m")
    assert code == 2 and "bucket" in text
    code, text = fuyun(server, "traffic", "--tenant", "no-such-tenant")
    assert code == 2 and "tenant" in text
    code, text = fuyun(server, "collector", "--pcap", str(tmp_path / "missing.pcap"))
    assert code == 2 and "--pcap" in text
    env = {**server, "FUYUN_LINK_ALERT_THRESHOLD": "1.5"}
    code, text = fuyun(env, "collector", "--pcap", str(tmp_path / "missing.pcap"))
    assert code == 2 and "threshold" in text


@pytest.mark.slow
def test_serve_runs_the_collector_when_a_port_is_set(tmp_path: Path) -> None:
    http_port, udp_port = free_port(), free_port()
    env = {
        **os.environ,
        "FUYUN_DATABASE_URL": f"sqlite:///{tmp_path / 'fuyun.db'}",
        "FUYUN_COLLECTOR_HOST": "127.0.0.1",
        "FUYUN_COLLECTOR_PORT": str(udp_port),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "FUYUN_ARGON2_PROFILE": "fast",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fuyun.cli.main",
                "serve",
                "--fabric",
                "small",
                "--demo",
                "--port",
                str(http_port),
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert f"sFlow:    udp 127.0.0.1:{udp_port}" in log.read_text()
        token = log.read_text().split("operator token: ")[1].split()[0]
        db_url = env["FUYUN_DATABASE_URL"]
        tenant = load_bindings(Database(db_url))[0][0].tenant
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for d in _datagrams(db_url, tenant):
                tx.sendto(d, ("127.0.0.1", udp_port))
        # The collector flushes closed 10 s buckets every 5 s: poll until ours lands.
        headers = {"Authorization": f"Bearer {token}"}
        found = []
        while time.monotonic() < deadline + 60 and not found:
            r = httpx.get(
                f"{url}/api/v1/traffic",
                headers=headers,
                params={"bucket": "10s", "tenant": tenant},
            )
            assert r.status_code == 200, r.text
            found = r.json()["top"]
            time.sleep(0.5)
        assert found and all(e["tenant"] == tenant for e in found)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
