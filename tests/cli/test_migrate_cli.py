"""`fuyun migrate`, `host evacuate`, `tor drain`, `module rebalance` against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.test_cli_e2e import fuyun
from tests.support.live import cli_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with cli_server(tmp_path_factory.mktemp("cli-mig"), tmp_path_factory.mktemp("cfg")) as env:
        for args in (
            ("tenant", "create", "studio", "--vms", "20", "--vcpus", "40"),
            ("network", "create", "web", "--cidr", "10.1.0.0/24", "--tenant", "studio",
             "--module", "sz1-m01"),
            ("network", "create", "db", "--cidr", "10.2.0.0/24", "--tenant", "studio",
             "--module", "sh1-m01"),
        ):  # fmt: skip
            code, text = fuyun(env, *args)
            assert code == 0, text
        yield env


def _vm(env: dict[str, str], name: str, host: str, network: str) -> None:
    code, text = fuyun(
        env, "vm", "create", name, "--flavor", "s1.small", "--tenant", "studio",
        "--network", network, "--host", host,
    )  # fmt: skip
    assert code == 0, text


def test_plan_and_migrate(server: dict[str, str]) -> None:
    _vm(server, "a", "sz1-m01-t01-h01", "web")
    code, text = fuyun(server, "migrate", "plan", "a", "--to", "sz1-m01-t02-h01")
    assert code == 0, text
    assert "same-module" in text and "keeps its IP and MAC" in text
    code, text = fuyun(server, "migrate", "plan", "a", "--to-site", "sh1")
    assert code == 2 and "routed-clos" in text
    code, text = fuyun(server, "migrate", "a", "--to-tor", "sz1-m01-t03")
    assert code == 0, text
    assert "sz1-m01-t03-" in text
    code, text = fuyun(server, "migrate", "list", "--json")
    assert code == 0 and json.loads(text)[0]["state"] == "succeeded"
    code, text = fuyun(server, "migrate", "a", "--to", "sh1-m01-t01-h01")
    assert code == 2 and "routed-clos" in text


def test_migrate_no_wait_follows_the_steps_to_the_end(server: dict[str, str]) -> None:
    _vm(server, "nw", "sz1-m01-t01-h02", "web")
    code, text = fuyun(server, "migrate", "nw", "--to", "sz1-m01-t02-h02", "--no-wait")
    assert code == 0, text
    assert "moved nw: sz1-m01-t01-h02 -> sz1-m01-t02-h02 (same-module)" in text
    code, text = fuyun(server, "migrate", "nw", "--to", "sz1-m01-t03-h02", "--no-wait", "--json")
    assert code == 0, text
    move = json.loads(text)
    assert move["state"] == "succeeded" and {s["state"] for s in move["steps"]} == {"done"}
    code, text = fuyun(server, "migrate", "nw", "--to", "sh1-m01-t01-h01", "--no-wait")
    assert code == 2 and "routed-clos" in text, "refused before anything starts"


def test_evacuate_drain_rebalance(server: dict[str, str]) -> None:
    _vm(server, "e1", "sz1-m01-t02-h02", "web")
    _vm(server, "d1", "sh1-m01-t02-h01", "db")
    code, text = fuyun(server, "host", "evacuate", "sz1-m01-t02-h02")
    assert code == 0, text
    assert "succeeded: 1 moved, 0 failed" in text
    code, text = fuyun(server, "tor", "drain", "sh1-m01-t02", "--json")
    assert code == 2
    batch = json.loads(text[text.index("{") :])
    assert batch["failed"] == 1 and "routed-clos" in batch["items"][0]["error"]
    code, text = fuyun(server, "module", "rebalance", "sz1-m01", "--workers", "2")
    assert code == 0, text
    code, text = fuyun(server, "migrate", "site-plan", "sz1")
    assert code == 0 and "keep their IPs" in text
