"""The CLI against a real server process: the verbs work, bad input exits 2 with the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuyun.cli.main import app
from tests.support.live import cli_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir, config = tmp_path_factory.mktemp("cli"), tmp_path_factory.mktemp("cfg")
    with cli_server(workdir, config) as env:
        yield env


def fuyun(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_a_partner_arrives_by_cli(server: dict[str, str]) -> None:
    code, text = fuyun(server, "tenant", "create", "studio", "--vms", "5", "--vcpus", "20")
    assert code == 0, text
    code, text = fuyun(
        server,
        "network",
        "create",
        "web",
        "--cidr",
        "10.1.0.0/24",
        "--tenant",
        "studio",
        "--module",
        "sz1-m01",
    )
    assert code == 0, text
    assert "10.1.0.0/24" in text and "10.1.0.1" in text
    code, text = fuyun(server, "port", "create", "web", "--host", "sz1-m01-t01-h01", "--dry-run")
    assert code == 0, text
    assert "dry run" in text and "sz1-m01-agg1" in text
    code, text = fuyun(
        server, "vm", "create", "api", "--flavor", "s1.small", "--count", "2", "--tenant", "studio"
    )
    assert code == 0, text
    code, text = fuyun(server, "vm", "list", "--json")
    assert code == 0 and sorted(v["name"] for v in json.loads(text)) == ["api-1", "api-2"]
    code, text = fuyun(server, "tenant", "quota", "studio")
    assert code == 0 and "vms" in text
    code, text = fuyun(server, "network", "utilization", "--json")
    assert code == 0 and json.loads(text)["networks"][0]["name"] == "web"
    code, text = fuyun(server, "audit", "-n", "5")
    assert code == 0 and "vm.create" in text


def test_bad_input_exits_2_naming_the_field(server: dict[str, str]) -> None:
    code, text = fuyun(
        server, "network", "create", "bad", "--cidr", "10.0.0.0/33", "--tenant", "studio"
    )
    assert code == 2
    assert "cidr" in text
    code, text = fuyun(
        server, "vm", "create", "x", "--flavor", "no-such-flavor", "--tenant", "studio"
    )
    assert code == 2 and "flavor" in text


def test_fabric_listing_filters(server: dict[str, str]) -> None:
    code, text = fuyun(server, "host", "list", "--module", "sz1-m01", "--json", "-n", "3")
    assert code == 0
    hosts = json.loads(text)
    assert len(hosts) == 3 and all(h["name"].startswith("sz1-m01") for h in hosts)
    code, text = fuyun(server, "host", "maintenance", hosts[0]["name"])
    assert code == 0 and "maintenance" in text


def test_no_server_is_exit_1(tmp_path: Path) -> None:
    env = {
        "FUYUN_URL": "http://127.0.0.1:9",
        "FUYUN_TOKEN": "fyt_x",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    code, text = fuyun(env, "tenant", "list")
    assert code == 1 and "cannot reach" in text


def test_adjust_and_explain_by_cli(server: dict[str, str]) -> None:
    fuyun(server, "tenant", "create", "adjusters", "--vms", "5", "--vcpus", "40")
    code, text = fuyun(
        server,
        "group",
        "create",
        "ha",
        "--policy",
        "anti-affinity",
        "--level",
        "tor",
        "--tenant",
        "adjusters",
    )
    assert code == 0, text
    code, text = fuyun(
        server,
        "vm",
        "create",
        "db",
        "--flavor",
        "s1.small",
        "--count",
        "2",
        "--group",
        "ha",
        "--tenant",
        "adjusters",
        "--json",
    )
    assert code == 0, text
    vm = json.loads(text)[0]
    code, text = fuyun(server, "vm", "resize", vm["id"], "--flavor", "s1.medium")
    assert code == 0 and "2 vCPU" in text, text
    code, text = fuyun(server, "explain", vm["id"], "--host", "sh1-m01-t01-h01")
    assert code == 0, text
    assert "runs on" in text and "why not sh1-m01-t01-h01" in text
    code, text = fuyun(server, "workflow", "list", "--json")
    assert code == 0
    kinds = {w["kind"] for w in json.loads(text)}
    assert {"vm.create", "vm.resize"} <= kinds


def test_security_policy_by_cli(server: dict[str, str]) -> None:
    fuyun(server, "tenant", "create", "guarded", "--vms", "5", "--vcpus", "40")
    assert (
        fuyun(
            server,
            "network",
            "create",
            "g",
            "--cidr",
            "10.9.0.0/24",
            "--tenant",
            "guarded",
            "--module",
            "sz1-m01",
        )[0]
        == 0
    )
    code, text = fuyun(server, "sg", "create", "web", "--tenant", "guarded")
    assert code == 0, text
    code, text = fuyun(
        server,
        "sg",
        "rule-add",
        "web",
        "--direction",
        "ingress",
        "--protocol",
        "tcp",
        "--port",
        "80-443",
    )
    assert code == 0, text
    code, text = fuyun(server, "sg", "rule-add", "web", "--protocol", "tcp", "--port", "99999")
    assert code == 2 and "port" in text
    code, text = fuyun(server, "sg", "show", "web", "--json")
    assert code == 0 and json.loads(text)["rules"][0]["port_max"] == 443
    code, text = fuyun(server, "verify")
    assert code == 0 and "OK" in text, text
    code, text = fuyun(server, "device", "list", "--json")
    assert code == 0
    code, text = fuyun(server, "sg", "sets", "--json")
    assert code == 0 and isinstance(json.loads(text), list), text


def test_plan_on_the_live_store_by_cli(server: dict[str, str]) -> None:
    code, text = fuyun(
        server, "plan", "run", "--set", "steps=2", "--set", "tenants=3", "--limit", "3", "--json"
    )
    assert code == 0, text
    data = json.loads(text)
    assert data["source"] == "live" and len(data["timeline"]) == 2
    code, text = fuyun(server, "plan", "run", "--set", "growth=sideways")
    assert code == 2 and "scenario.growth" in text
