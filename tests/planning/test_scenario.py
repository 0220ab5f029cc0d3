"""Scenarios are pure functions of their parameters; a seeded plan is identical twice."""

from __future__ import annotations

import json

import pytest

from fuyun.domain.errors import InvalidInput
from fuyun.fabric.generator import generate
from fuyun.planning.plan import Options, plan
from fuyun.planning.scenario import MAX_BATCH, PRESETS, preset


def _json(result: object) -> str:
    data = result.to_dict()  # type: ignore[attr-defined]
    data.pop("elapsed_s")
    return json.dumps(data, sort_keys=True, default=str)


def test_a_seeded_plan_is_identical_on_two_runs() -> None:
    spec = generate("small", seed=3)
    scenario = preset("viral-app", seed=11, steps=6)
    opts = Options(nplus1_limit=20)
    first, second = _json(plan(spec, scenario, opts)), _json(plan(spec, scenario, opts))
    assert first == second
    other = _json(plan(spec, preset("viral-app", seed=12, steps=6), opts))
    assert other != first


def test_demands_follow_the_parameters() -> None:
    s = preset("steady", tenants=3, new_tenants_per_step=2, steps=2, initial_vms=(4, 4))
    steps = s.demands()
    assert sorted(b.tenant for b in steps[0]) == [0, 1, 2]
    assert sum(b.count for b in steps[0]) == 12
    # step 1: five arrive-or-grow asks; the two newcomers ask 4 each
    assert [b.count for b in steps[1] if b.tenant >= 3] == [4, 4]
    assert s.demands() == steps


def test_viral_asks_arrive_in_api_sized_batches() -> None:
    s = preset("viral-app", steps=7)
    big = [b for b in s.demands()[6] if b.count == MAX_BATCH]
    assert len(big) >= 10  # 5,000 VMs in requests of at most 500
    assert all(b.count <= MAX_BATCH for bs in s.demands() for b in bs)


def test_presets_are_the_three_named_shapes() -> None:
    assert set(PRESETS) == {"steady", "viral-app", "1p4v-to-1p10v"}
    d = PRESETS["1p4v-to-1p10v"].density
    assert d is not None and (d.before, d.after) == (4, 10)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"steps": 0}, "scenario.steps"),
        ({"growth": "sideways"}, "scenario.growth"),
        ({"flavors": [("m9.huge", 1.0)]}, "scenario.flavors"),
        ({"colour": "blue"}, "scenario.colour"),
        ({"initial_vms": (5, 2)}, "scenario.initial_vms"),
        ({"viral": [{"step": 99, "tenants": 1, "vms": 1}]}, "scenario.viral"),
    ],
)
def test_bad_scenarios_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        preset("steady", **overrides)
    assert exc.value.field == field


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        preset("doomsday")
    assert exc.value.field == "scenario.name"
