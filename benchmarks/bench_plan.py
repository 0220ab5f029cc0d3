"""Capacity planning at the seed's scale: a 1,000,000-VM growth scenario on ``tencent-2010``.

The claim under test (issue 11): a growth scenario of a million VMs on the
``tencent-2010`` fabric (100,000 hosts) runs to completion through the real scheduler,
IPAM math and layer-2 model, and we report its time and peak memory.

What one run does:

1. Generates the fabric (seed 0) and builds the in-memory world (timed).
2. **Baseline, in the same run**: the first ``--baseline-vms`` VMs of the scenario placed
   with a full scheduling decision per VM (``Simulation(batch=False)``), then the same
   prefix with batch placement (the last decision's ranked hosts, every filter re-run per
   VM) -- VMs/s of each and the ratio.
3. **The whole scenario** with batch placement: VMs demanded, placed, refused, the first
   step and resource to run out per scope, wall time, VMs/s, peak RSS
   (``resource.getrusage``) and, with ``--tracemalloc``, the peak of Python allocations
   (slower: tracemalloc hooks every allocation).

    .venv/bin/python benchmarks/bench_plan.py                 # the million
    .venv/bin/python benchmarks/bench_plan.py --tenants 800   # a tenth, for a quick look
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from collections import Counter
from dataclasses import replace

from fuyun.fabric.generator import generate
from fuyun.planning.scenario import Scenario
from fuyun.planning.simulate import Simulation
from fuyun.planning.world import build_world


def scenario(tenants: int, steps: int) -> Scenario:
    """Steady growth sized so that ``tenants=8000`` asks for about 1.1 million VMs."""
    return Scenario(
        name="million",
        description="8,000 partners, 1,500 more a step, 20-80 VMs each, growing 10% a step",
        steps=steps,
        tenants=tenants,
        new_tenants_per_step=max(1, tenants * 3 // 16),
        initial_vms=(20, 80),
        growth_per_step=0.1,
    )


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prefix_rate(spec: object, sc: Scenario, vms: int, *, batch: bool) -> tuple[int, float]:
    """VMs/s over the first ``vms`` VMs of step 0 (a scenario cut to that demand)."""
    cut = replace(sc, steps=1, tenants=max(1, vms // 50), new_tenants_per_step=0)
    world = build_world(spec)  # type: ignore[arg-type]
    sim = Simulation(world, cut, batch=batch)
    t = time.perf_counter()
    result = sim.run()
    return result.placed, result.placed / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--baseline-vms", type=int, default=20_000)
    ap.add_argument("--tracemalloc", action="store_true")
    args = ap.parse_args()

    t = time.perf_counter()
    spec = generate("tencent-2010")
    gen_s = time.perf_counter() - t
    sc = scenario(args.tenants, args.steps)
    demanded = sc.total_vms()
    print(f"fabric tencent-2010: {len(spec.hosts):,} hosts, generated in {gen_s:.1f} s")
    print(f"scenario: {demanded:,} VMs demanded over {sc.steps} steps", flush=True)

    if args.baseline_vms:
        n1, slow = prefix_rate(spec, sc, args.baseline_vms, batch=False)
        n2, fast = prefix_rate(spec, sc, args.baseline_vms, batch=True)
        print(f"baseline, a decision per VM: {n1:,} VMs at {slow:,.0f} VMs/s")
        print(f"batch placement:             {n2:,} VMs at {fast:,.0f} VMs/s")
        print(f"ratio batch / per-VM decision: {fast / slow:.1f}x", flush=True)

    if args.tracemalloc:
        tracemalloc.start()
    t = time.perf_counter()
    world = build_world(spec)
    build_s = time.perf_counter() - t
    sim = Simulation(world, sc)
    result = sim.run()
    total_s = time.perf_counter() - t
    peak_py = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None

    print(f"world built in {build_s:.1f} s; simulation {result.elapsed_s:.1f} s")
    print(
        f"placed {result.placed:,}, refused {result.unplaced:,} of {result.demanded:,}; "
        f"first refusal at step {result.first_unplaced_step}; {result.spills:,} spills"
    )
    print(f"end to end {total_s:.1f} s = {result.demanded / total_s:,.0f} VMs/s demanded")
    print(
        f"peak RSS {rss_mib():,.0f} MiB"
        + (f"; peak Python heap {peak_py:,.0f} MiB" if peak_py else "")
    )
    firsts = Counter((e.scope, e.resource) for e in result.exhaustion)
    print("refusals by scope and resource (first per module/site):", dict(firsts))
    for e in result.exhaustion:
        if e.scope in ("fleet", "site"):
            print(f"  {e.scope} {e.name}: {e.label} at step {e.step}")
    print("step  VMs        refused    density  vCPU   RAM    NIC    site-space  VLANs  ToR-MAC")
    for s in result.timeline:
        print(
            f"{s.step:<5} {s.vms:<10,} {s.unplaced:<10,} {s.density.pct:6.1f}% "
            f"{s.vcpu.pct:5.1f}% {s.ram.pct:5.1f}% {s.nic.pct:5.1f}% {s.space.pct:9.1f}% "
            f"{s.vlans.pct:5.1f}% {s.tor_mac_max:6.1f}%"
        )


if __name__ == "__main__":
    main()
