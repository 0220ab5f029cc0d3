"""Settings: defaults < TOML file (FUYUN_CONFIG) < environment < explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuyun.config import Settings


def test_defaults_are_the_single_node_laptop() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///fuyun.db"
    assert s.workflow_runner == "inline" and s.reconcile_in_process is True


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    conf = tmp_path / "fuyun.toml"
    conf.write_text(
        '[fuyun]\ndatabase_url = "postgresql+psycopg://fuyun@db/fuyun"\n'
        'workflow_runner = "queue"\nworkflow-lease-s = 10\nreconcile_in_process = false\n'
        "cpu_allocation_ratio = 2.5\n"
    )
    env = {"FUYUN_CONFIG": str(conf), "FUYUN_WORKFLOW_LEASE_S": "7"}
    s = Settings.from_env(env)
    assert s.database_url == "postgresql+psycopg://fuyun@db/fuyun"
    assert s.workflow_runner == "queue" and s.reconcile_in_process is False
    assert s.workflow_lease_s == 7  # the environment wins over the file
    assert s.cpu_allocation_ratio == 2.5
    assert Settings.from_env(env, workflow_lease_s=3).workflow_lease_s == 3
    assert Settings.from_env({**env, "FUYUN_RECONCILE_IN_PROCESS": "yes"}).reconcile_in_process


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("colour = 1\n", {}, "unknown setting 'colour'"),
        ("workflow_lease_s = 1.5\n", {}, "expected an integer"),
        ('workflow_runner = "eventually"\n', {}, "workflow_runner must be one of"),
        ("= broken\n", {}, "fuyun.toml"),
        ("", {"FUYUN_RECONCILE_IN_PROCESS": "maybe"}, "FUYUN_RECONCILE_IN_PROCESS"),
        ("", {"FUYUN_WORKFLOW_LEASE_S": "ten"}, "FUYUN_WORKFLOW_LEASE_S"),
    ],
)
def test_bad_settings_name_where_they_came_from(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    conf = tmp_path / "fuyun.toml"
    conf.write_text(text)
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"FUYUN_CONFIG": str(conf), **env})


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        Settings.from_env({"FUYUN_CONFIG": str(tmp_path / "nope.toml")})
