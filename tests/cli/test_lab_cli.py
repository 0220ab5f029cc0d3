"""``fuyun lab up|status|down`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyroute2 import netns
from typer.testing import CliRunner

from fuyun.cli.main import app
from fuyun.fabric.yamlio import dump_fabric
from tests.support.labworld import lab_fabric, require_lab


@pytest.mark.slow
def test_lab_up_status_down(tmp_path: Path) -> None:
    require_lab()
    fabric = tmp_path / "fabric.yaml"
    fabric.write_text(dump_fabric(lab_fabric(tors=1, hosts_per_tor=2)))
    directory = tmp_path / "lab"
    runner = CliRunner()
    try:
        r = runner.invoke(app, ["lab", "up", "--fabric", str(fabric), "--dir", str(directory)])
        assert r.exit_code == 0, r.output
        assert "2 hosts" in r.output
        r = runner.invoke(app, ["lab", "status", "--dir", str(directory), "--json"])
        status = json.loads(r.output)
        assert status["up"] and status["hosts"] == 2 and status["bridges"] == 4
    finally:
        r = runner.invoke(app, ["lab", "down", "--dir", str(directory)])
    assert r.exit_code == 0 and "removed namespace" in r.output
    assert not [n for n in netns.listnetns() if n.startswith(f"fuyun-lab-{status['tag']}")]
    r = runner.invoke(app, ["lab", "status", "--dir", str(directory)])
    assert r.exit_code == 1 and "no lab" in r.output


def test_lab_up_names_a_bad_fabric(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app, ["lab", "up", "--fabric", str(tmp_path / "nope.yaml"), "--dir", str(tmp_path)]
    )
    assert r.exit_code == 2 and "fabric" in r.output
