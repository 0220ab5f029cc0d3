"""``fuyun fabric``: generate, check, presets, import and export, through Typer's runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fuyun.cli.fabric import fabric_app
from fuyun.fabric.generator import generate
from fuyun.fabric.loader import canonical
from fuyun.fabric.yamlio import dump_fabric, load_fabric

WIDE = {"COLUMNS": "240"}  # keep Rich from wrapping the table cells tests look for


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def small_file(tmp_path: Path, runner: CliRunner) -> Path:
    path = tmp_path / "small.yaml"
    result = runner.invoke(fabric_app, ["generate", "small", "--seed", "3", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_generate_then_check_passes(runner: CliRunner, small_file: Path) -> None:
    assert load_fabric(small_file) == generate("small", seed=3)
    result = runner.invoke(fabric_app, ["check", str(small_file)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_generate_to_standard_output(runner: CliRunner) -> None:
    result = runner.invoke(fabric_app, ["generate", "small"])
    assert result.exit_code == 0
    assert result.stdout == dump_fabric(generate("small"))


def test_generate_unknown_preset(runner: CliRunner) -> None:
    result = runner.invoke(fabric_app, ["generate", "huge"])
    assert result.exit_code == 2
    assert "unknown preset 'huge'" in result.output and "tencent-2010" in result.output


def test_check_finds_errors(runner: CliRunner, small_file: Path) -> None:
    spec = load_fabric(small_file)
    host = spec.hosts[2]
    small_file.write_text(
        small_file.read_text().replace(f"tor: {host.tor}, model", "tor: nowhere, model", 1)
    )
    result = runner.invoke(fabric_app, ["check", str(small_file)], env=WIDE)
    assert result.exit_code == 1, result.output
    assert f"hosts[0] ({spec.hosts[0].name})" in result.output
    assert "unknown switch nowhere" in result.output
    assert "error(s)" in result.output


def test_check_invalid_file_names_the_line(runner: CliRunner, small_file: Path) -> None:
    lines = small_file.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if "fabric_kind: routed-clos" in line)
    lines[n] = lines[n].replace("routed-clos", "routed")
    small_file.write_text("\n".join(lines))
    result = runner.invoke(fabric_app, ["check", str(small_file)], env=WIDE)
    assert result.exit_code == 2
    assert f"line {n + 1}: modules[" in result.output
    assert "fabric_kind: Input should be 'routed-clos' or 'switched-clos'" in result.output


def test_check_needs_a_file_or_live(runner: CliRunner) -> None:
    assert runner.invoke(fabric_app, ["check"]).exit_code == 2


def test_presets(runner: CliRunner) -> None:
    result = runner.invoke(fabric_app, ["presets"], env=WIDE)
    assert result.exit_code == 0
    for name in ("small", "default", "tencent-2010", "100,000"):
        assert name in result.output


def test_import_check_live_and_export(runner: CliRunner, small_file: Path, tmp_path: Path) -> None:
    env = {**WIDE, "FUYUN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = runner.invoke(fabric_app, ["import", str(small_file)], env=env)
    assert result.exit_code == 0, result.output
    assert "imported small" in result.output

    result = runner.invoke(fabric_app, ["check", "--live"], env=env)
    assert result.exit_code == 0, result.output

    out = tmp_path / "exported.yaml"
    result = runner.invoke(fabric_app, ["export", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    exported = load_fabric(out)
    assert exported == canonical(load_fabric(small_file)).model_copy(update={"name": "fabric"})

    again = runner.invoke(fabric_app, ["import", str(small_file)], env=env)
    assert again.exit_code == 2
    assert "already in the store" in again.output


def test_import_refuses_a_failing_fabric(runner: CliRunner, tmp_path: Path) -> None:
    spec = generate("small")
    hosts = [spec.hosts[0].model_copy(update={"model": "homebrew-1u"}), *spec.hosts[1:]]
    path = tmp_path / "bad.yaml"
    path.write_text(dump_fabric(spec.model_copy(update={"hosts": hosts})))
    env = {**WIDE, "FUYUN_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    result = runner.invoke(fabric_app, ["import", str(path)], env=env)
    assert result.exit_code == 1
    assert "homebrew-1u is not a standard model" in result.output
    assert "nothing was imported" in result.output
