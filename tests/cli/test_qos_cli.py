"""QoS by CLI against a real server: define, attach, refuse with the link, exit 2 on bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fuyun.cli.qos import mbps, nbytes
from tests.cli.test_cli_e2e import fuyun
from tests.support.live import cli_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir, config = tmp_path_factory.mktemp("cli-qos"), tmp_path_factory.mktemp("cfg")
    with cli_server(workdir, config) as env:
        yield env


def test_rates_are_read_as_people_write_them() -> None:
    assert (mbps("300M", "-"), mbps("1G", "-"), mbps("500", "-"), mbps("2000k", "-")) == (
        300,
        1000,
        500,
        2,
    )
    assert (nbytes("64k", "-"), nbytes("1M", "-"), nbytes("1500", "-")) == (65536, 1 << 20, 1500)


def test_qos_by_cli(server: dict[str, str]) -> None:
    assert fuyun(server, "tenant", "create", "studio", "--bandwidth-mbps", "50000")[0] == 0
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
    code, text = fuyun(
        server,
        "qos",
        "create",
        "gold",
        "--guarantee",
        "300M",
        "--ceiling",
        "1G",
        "--burst",
        "64k",
        "--tenant",
        "studio",
    )
    assert code == 0, text
    code, text = fuyun(
        server,
        "vm",
        "create",
        "api",
        "--flavor",
        "s1.small",
        "--network",
        "web",
        "--tenant",
        "studio",
        "--qos-policy",
        "gold",
        "--json",
    )
    assert code == 0, text
    [vm] = json.loads(text)
    code, text = fuyun(server, "qos", "list", "--json")
    assert code == 0 and json.loads(text)[0]["guarantee_mbps"] == 300
    code, text = fuyun(server, "qos", "attach", "none", "--vm", vm["id"])
    assert code == 0 and "no policy" in text, text
    code, text = fuyun(server, "qos", "attach", "gold", "--vm", vm["id"])
    assert code == 0 and "1 port(s) now have gold" in text, text
    code, text = fuyun(server, "vm", "show", vm["id"], "--json")
    host = json.loads(text)["host_id"]
    code, text = fuyun(server, "host", "show", host, "--json")
    code, text = fuyun(server, "device", "show", "host", json.loads(text)["name"], "-e", "qos")
    assert code == 0 and "qos/" in text and '"min_bps":300000000' in text, text
    code, text = fuyun(
        server,
        "qos",
        "create",
        "agg",
        "--scope",
        "tenant",
        "--guarantee",
        "200M",
        "--ceiling",
        "20G",
        "--tenant",
        "studio",
    )
    assert code == 0, text
    code, text = fuyun(server, "qos", "tenant", "studio", "agg")
    assert code == 0 and "agg guarantee 200 Mbit/s" in text, text
    # Too much for the host's uplink: refused, naming it (409 -> exit 2).
    code, text = fuyun(server, "qos", "update", "gold", "--guarantee", "20G", "--ceiling", "20G")
    assert code == 2 and "uplink" in text, text
    code, text = fuyun(server, "audit", "-n", "20", "--json")
    assert code == 0
    assert ("qos-policy.update", "failure") in {
        (e["action"], e["result"]) for e in json.loads(text)
    }


def test_bad_qos_input_exits_2_naming_the_field(server: dict[str, str]) -> None:
    fuyun(server, "tenant", "create", "bad-input")
    code, text = fuyun(
        server,
        "qos",
        "create",
        "x",
        "--guarantee",
        "2G",
        "--ceiling",
        "1G",
        "--tenant",
        "bad-input",
    )
    assert code == 2 and "guarantee_mbps" in text, text
    code, text = fuyun(server, "qos", "create", "x", "--ceiling", "fast", "--tenant", "bad-input")
    assert code == 2 and "--ceiling" in text, text
    code, text = fuyun(server, "qos", "attach", "x")
    assert code == 2
