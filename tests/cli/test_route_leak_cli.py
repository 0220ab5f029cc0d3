"""Route leaks by CLI against a real server: request, review pending, approve, revoke."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.test_cli_e2e import fuyun
from tests.support.live import cli_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir, config = tmp_path_factory.mktemp("cli-leaks"), tmp_path_factory.mktemp("cfg")
    with cli_server(workdir, config) as env:
        yield env


def _network(server: dict[str, str], tenant: str, name: str, cidr: str) -> str:
    assert fuyun(server, "tenant", "create", tenant)[0] == 0
    code, text = fuyun(
        server, "network", "create", name, "--cidr", cidr, "--tenant", tenant, "--json"
    )
    assert code == 0, text
    return str(json.loads(text)["id"])


def test_route_leaks_by_cli(server: dict[str, str]) -> None:
    web = _network(server, "acme", "web", "10.71.0.0/24")
    db = _network(server, "bolt", "db", "10.72.0.0/24")
    twin = _network(server, "copy", "twin", "10.71.0.0/24")

    code, text = fuyun(server, "route-leak", "request", web, twin)
    assert code == 2, text
    assert "ambiguous" in text and "peer_network_id" in text
    code, text = fuyun(server, "route-leak", "request", web, db, "--json")
    assert code == 0, text
    leak = json.loads(text)
    assert leak["state"] == "pending"

    code, text = fuyun(server, "route-leak", "list", "--state", "pending", "--json")
    assert code == 0 and [x["id"] for x in json.loads(text)] == [leak["id"]]
    code, text = fuyun(server, "route-leak", "approve", leak["id"])
    assert code == 0 and "approved" in text, text
    code, text = fuyun(server, "route-leak", "show", leak["id"], "--json")
    assert json.loads(text)["peer_prefixes"] == ["10.72.0.0/24"]
    assert fuyun(server, "route-leak", "list", "--state", "stuck")[0] == 2
    code, text = fuyun(server, "route-leak", "revoke", leak["id"])
    assert code == 0 and "revoked" in text
    code, text = fuyun(server, "route-leak", "list", "--json")
    assert json.loads(text) == []
