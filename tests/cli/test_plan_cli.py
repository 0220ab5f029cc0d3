"""``fuyun plan`` on presets and files, in process: tables, JSON, what-if, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuyun.cli.main import app
from fuyun.fabric.generator import generate
from fuyun.fabric.yamlio import dump_fabric

WIDE = {"COLUMNS": "240"}
QUICK = ["--set", "steps=3", "--set", "tenants=6", "--limit", "5"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_plan_run_prints_the_tables(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", "run", "-f", "small", "-s", "viral-app", *QUICK], env=WIDE)
    assert result.exit_code == 0, result.output
    for title in (
        "first to run out",
        "utilization over time",
        "address cost of each growth strategy",
        "busiest switches",
        "remedies, best first",
        "N+1",
    ):
        assert title in result.output, title


def test_plan_run_json_on_a_fabric_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(dump_fabric(generate("small", seed=2)))
    result = runner.invoke(
        app, ["plan", "run", "-f", str(path), *QUICK, "--no-remedies", "--no-nplus1", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["steps"] == 3 and data["remedies"] == [] and data["nplus1"] is None
    assert data["source"] == "fabric YAML"


def test_plan_compare_side_by_side(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["plan", "compare", "-f", "small", "--switched", "--set", "steps=2"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    assert "what-if under steady" in result.output
    assert "small with switched-clos (TRILL)" in result.output


def test_bad_input_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", "run", "-f", "small", "--set", "steps=0"])
    assert result.exit_code == 2
    assert "scenario.steps" in result.output
    result = runner.invoke(app, ["plan", "run", "-f", "small", "--set", "steps"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["plan", "run", "-f", "atlantis"])
    assert result.exit_code == 2 and "unknown fabric" in result.output


def test_presets(runner: CliRunner) -> None:
    result = runner.invoke(app, ["plan", "presets", "--json"])
    assert result.exit_code == 0
    assert set(json.loads(result.output)["scenarios"]) == {"steady", "viral-app", "1p4v-to-1p10v"}
