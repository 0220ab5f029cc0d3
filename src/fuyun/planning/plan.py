"""A whole plan: the scenario on the fabric, the growth strategies, the remedies, N+1.

:func:`run` simulates once. :func:`plan` adds what an operator asks next: what
each growth strategy would have cost in addresses, which fabric change pushes
exhaustion furthest (ranked, with the numbers), and the N+1 verdicts on the end
state. :func:`compare` runs one scenario on two fabrics for a side-by-side view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from fuyun.fabric.spec import FabricSpec
from fuyun.planning import fabrics, nplus1
from fuyun.planning.report import PlanResult
from fuyun.planning.scenario import GROWTH, Scenario
from fuyun.planning.simulate import Simulation
from fuyun.planning.world import Baseline, VlanPoolParams, build_world


@dataclass(frozen=True)
class Options:
    cpu_ratio: float = 4.0
    ram_ratio: float = 1.0
    vlan_pool: VlanPoolParams = field(default_factory=VlanPoolParams)
    strategies: bool = True
    remedies: bool = True
    nplus1: bool = True
    nplus1_limit: int = 200


def run(
    spec: FabricSpec, scenario: Scenario, options: Options, baseline: Baseline | None = None
) -> tuple[Simulation, PlanResult]:
    """One simulation: its end state (for N+1) and its result."""
    world = build_world(
        spec,
        cpu_ratio=options.cpu_ratio,
        ram_ratio=options.ram_ratio,
        vlan_pool=options.vlan_pool,
        baseline=baseline,
    )
    sim = Simulation(world, scenario)
    return sim, sim.run()


def plan(
    spec: FabricSpec,
    scenario: Scenario,
    options: Options | None = None,
    baseline: Baseline | None = None,
) -> PlanResult:
    opts = options or Options()
    sim, result = run(spec, scenario, opts, baseline)
    if opts.strategies:
        for growth in GROWTH:
            if growth == scenario.growth:
                result.strategies.append(result.addresses)
            else:
                _, other = run(spec, replace(scenario, growth=growth), opts, baseline)
                result.strategies.append(other.addresses)
    if opts.remedies:
        result.remedies = remedies(spec, scenario, opts, baseline, result)
    if opts.nplus1:
        result.nplus1 = nplus1.check(sim, limit=opts.nplus1_limit).to_dict()
    return result


def _horizon(r: PlanResult) -> int:
    """The step at which VMs were first refused; the scenario's length if never."""
    return r.steps if r.first_unplaced_step is None else r.first_unplaced_step


def _first_module_step(r: PlanResult) -> int | None:
    steps = [e.step for e in r.exhaustion if e.scope == "module"]
    return min(steps) if steps else None


def remedies(
    spec: FabricSpec,
    scenario: Scenario,
    opts: Options,
    baseline: Baseline | None,
    base: PlanResult,
) -> list[dict[str, Any]]:
    """Each candidate change run on the same scenario, best first."""
    hot_site = _hottest_site(base, spec)
    candidates: list[tuple[str, str, FabricSpec, Scenario]] = []
    other = "new-vlan" if scenario.growth != "new-vlan" else "secondary"
    candidates.append(
        (f"growth-{other}", f"grow networks by {other} instead of {scenario.growth}", spec,
         replace(scenario, growth=other))
    )  # fmt: skip
    routed = fabrics.routed_modules(spec)
    if routed:
        candidates.append(
            ("switched-clos", f"rebuild {len(routed)} routed-clos modules as switched-clos (TRILL)",
             fabrics.to_switched(spec), scenario)
        )  # fmt: skip
    if hot_site:
        candidates.append(
            ("another-module", f"add a module to {hot_site}", fabrics.add_module(spec, hot_site),
             scenario)
        )  # fmt: skip
        candidates.append(
            ("another-site", f"add a site built like {hot_site}, joined by OTV",
             fabrics.add_site(spec, hot_site), scenario)
        )  # fmt: skip
    rows = []
    for key, what, fabric, sc in candidates:
        _, r = run(fabric, sc, replace(opts, strategies=False, remedies=False), baseline)
        rows.append(
            {
                "remedy": key,
                "what": what,
                "hosts_added": len(fabric.hosts) - len(spec.hosts),
                "first_unplaced_step": r.first_unplaced_step,
                "pushed_steps": _horizon(r) - _horizon(base),
                "first_module_exhaustion_step": _first_module_step(r),
                "placed": r.placed,
                "unplaced": r.unplaced,
                "extra_vms_placed": r.placed - base.placed,
                "boundary_loss": r.addresses.boundary_loss,
                "growth_vlans": r.addresses.growth_vlans,
                "spills": r.spills,
            }
        )
    rows.sort(key=lambda x: (-x["pushed_steps"], x["unplaced"], x["hosts_added"], x["remedy"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def _hottest_site(r: PlanResult, spec: FabricSpec) -> str | None:
    firsts = sorted(r.first("site").values(), key=lambda e: (e.step, e.name))
    if firsts:
        return firsts[0].name
    return spec.sites[0].name if spec.sites else None


def compare(
    a: FabricSpec,
    b: FabricSpec,
    scenario: Scenario,
    options: Options | None = None,
    baseline: Baseline | None = None,
) -> dict[str, Any]:
    """One scenario on two fabrics, side by side, with the differences that matter."""
    opts = replace(options or Options(), remedies=False, strategies=False)
    left = plan(a, scenario, opts, baseline)
    right = plan(b, scenario, opts, baseline)
    return {
        "scenario": scenario.to_dict(),
        "a": left.to_dict(),
        "b": right.to_dict(),
        "delta": {
            "placed": right.placed - left.placed,
            "unplaced": right.unplaced - left.unplaced,
            "pushed_steps": _horizon(right) - _horizon(left),
            "spills": right.spills - left.spills,
            "boundary_loss": right.addresses.boundary_loss - left.addresses.boundary_loss,
            "max_span_tors": right.spans.max_tors - left.spans.max_tors,
            "nplus1_failing": _failing(right) - _failing(left),
        },
        "summary": [asdict(left.spans), asdict(right.spans)],
    }


def _failing(r: PlanResult) -> int:
    return len(r.nplus1["failing"]) if r.nplus1 else 0
