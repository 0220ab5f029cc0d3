"""Growth scenarios: how many tenants arrive, how they grow, what they ask for.

A scenario is parameters plus a seed. :meth:`Scenario.demands` turns it into
the requests of every step — independent of any fabric, so two fabrics compared
under one scenario face exactly the same demand, and two runs with one seed are
identical. Presets name the shapes operators ask about: ``steady`` growth, a
``viral-app`` that explodes, and a ``1p4v-to-1p10v`` density change.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields, replace
from typing import Any

from fuyun.domain.errors import InvalidInput
from fuyun.fabric.catalog import FLAVORS

MAX_BATCH = 500  # the API's largest ``count``: bigger asks arrive as several requests
GROWTH = ("secondary", "new-vlan", "refuse")
LEVELS = ("host", "tor", "module", "site")
STRATEGIES = ("pack", "spread")


@dataclass(frozen=True)
class Viral:
    """At ``step``, ``tenants`` existing tenants each ask for ``vms`` more VMs at once."""

    step: int
    tenants: int
    vms: int


@dataclass(frozen=True)
class DensityChange:
    """Hosts run 1p{before}v until ``step``, then operators raise them to 1p{after}v."""

    step: int
    before: int
    after: int


@dataclass(frozen=True)
class Batch:
    """One request of the scenario: ``count`` VMs of one flavor for one tenant."""

    tenant: int
    flavor: str
    count: int
    grouped: bool  # members join the tenant's anti-affinity groups


@dataclass(frozen=True)
class Scenario:
    name: str = "custom"
    description: str = ""
    steps: int = 12
    seed: int = 0
    tenants: int = 20
    new_tenants_per_step: int = 5
    initial_vms: tuple[int, int] = (4, 20)
    growth_per_step: float = 0.1
    viral: tuple[Viral, ...] = ()
    flavors: tuple[tuple[str, float], ...] = (
        ("s1.small", 0.5),
        ("s1.medium", 0.3),
        ("s1.large", 0.2),
    )
    networks_per_tenant: int = 1
    growth: str = "secondary"
    prefix_len: int = 24
    anti_affinity_share: float = 0.3
    anti_affinity_level: str = "host"
    group_size: int = 2
    density: DensityChange | None = None
    strategy: str = "pack"
    address_space: str = "site"  # carve from the site aggregate, or "tenant" (private VRF)

    def __post_init__(self) -> None:
        check(self)

    def demands(self) -> list[list[Batch]]:
        """The requests of every step, in order; a pure function of the parameters."""
        rng = random.Random(self.seed)
        names = [n for n, _ in self.flavors]
        weights = [w for _, w in self.flavors]
        flavor: list[str] = []
        grouped: list[bool] = []
        size: list[int] = []
        steps: list[list[Batch]] = []
        for step in range(self.steps):
            asks: dict[int, int] = {}
            for t in range(len(flavor)):
                grow = _grow(rng, size[t], self.growth_per_step)
                if grow:
                    asks[t] = grow
            for event in self.viral:
                if event.step == step and flavor:
                    for t in sorted(
                        rng.sample(range(len(flavor)), min(event.tenants, len(flavor)))
                    ):
                        asks[t] = asks.get(t, 0) + event.vms
            arriving = self.tenants if step == 0 else self.new_tenants_per_step
            for _ in range(arriving):
                flavor.append(rng.choices(names, weights=weights)[0])
                grouped.append(rng.random() < self.anti_affinity_share)
                size.append(0)
                asks[len(flavor) - 1] = rng.randint(*self.initial_vms)
            batches = []
            for t in sorted(asks):
                size[t] += asks[t]
                left = asks[t]
                while left > 0:
                    n = min(left, MAX_BATCH)
                    batches.append(Batch(t, flavor[t], n, grouped[t]))
                    left -= n
            steps.append(batches)
        return steps

    def upper_bound(self) -> float:
        """A cheap ceiling on :meth:`total_vms`, to refuse a run before generating it."""
        arrivals = self.tenants + self.new_tenants_per_step * max(0, self.steps - 1)
        start = arrivals * (self.initial_vms[1] + self.steps)
        start += sum(v.tenants * v.vms for v in self.viral)
        return float(start) * (1.0 + self.growth_per_step) ** self.steps

    def total_vms(self) -> int:
        return sum(b.count for batches in self.demands() for b in batches)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "viral":
                value = [vars(v) for v in value]
            elif f.name == "density":
                value = None if value is None else vars(value)
            elif f.name == "flavors":
                value = [[n, w] for n, w in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _grow(rng: random.Random, size: int, rate: float) -> int:
    """``size * rate`` VMs, the fraction rounded up with its probability (seeded)."""
    want = size * rate
    whole = math.floor(want)
    return whole + (1 if rng.random() < want - whole else 0)


def check(s: Scenario) -> None:
    """Refuse a scenario that cannot run, naming the field (422 at the API)."""
    known = {f.name for f in FLAVORS}

    def need(ok: bool, field: str, message: str) -> None:
        if not ok:
            raise InvalidInput(message, field=f"scenario.{field}")

    need(1 <= s.steps <= 120, "steps", "steps must be 1..120")
    need(0 <= s.tenants <= 100_000, "tenants", "tenants must be 0..100000")
    need(0 <= s.new_tenants_per_step <= 100_000, "new_tenants_per_step", "must be 0..100000")
    lo, hi = s.initial_vms
    need(1 <= lo <= hi <= 100_000, "initial_vms", "initial_vms must be 1 <= low <= high")
    need(0.0 <= s.growth_per_step <= 10.0, "growth_per_step", "growth_per_step must be 0..10")
    need(bool(s.flavors), "flavors", "at least one flavor")
    for name, weight in s.flavors:
        need(name in known, "flavors", f"unknown flavor '{name}'")
        need(weight >= 0, "flavors", "flavor weights must be >= 0")
    need(sum(w for _, w in s.flavors) > 0, "flavors", "some flavor weight must be > 0")
    need(1 <= s.networks_per_tenant <= 16, "networks_per_tenant", "must be 1..16")
    need(s.growth in GROWTH, "growth", f"growth must be one of {', '.join(GROWTH)}")
    need(16 <= s.prefix_len <= 29, "prefix_len", "prefix_len must be 16..29")
    need(0.0 <= s.anti_affinity_share <= 1.0, "anti_affinity_share", "must be 0..1")
    need(s.anti_affinity_level in LEVELS, "anti_affinity_level", f"one of {', '.join(LEVELS)}")
    need(2 <= s.group_size <= 64, "group_size", "group_size must be 2..64")
    need(s.strategy in STRATEGIES, "strategy", "strategy must be pack or spread")
    need(s.address_space in ("site", "tenant"), "address_space", "site or tenant")
    for v in s.viral:
        need(0 <= v.step < s.steps and v.tenants >= 1 and v.vms >= 1, "viral", "bad viral event")
    if s.density is not None:
        d = s.density
        need(0 <= d.step < s.steps, "density", "density step must be inside the scenario")
        need(1 <= d.before <= 64 and 1 <= d.after <= 64, "density", "densities must be 1..64")


PRESETS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="steady",
            description="50 partners, 10 more a step, each growing 5% a step",
            tenants=50,
            new_tenants_per_step=10,
            initial_vms=(4, 20),
            growth_per_step=0.05,
        ),
        Scenario(
            name="viral-app",
            description="steady, then three apps take off at step 3 and one explodes at step 6",
            tenants=50,
            new_tenants_per_step=10,
            initial_vms=(4, 20),
            growth_per_step=0.05,
            viral=(Viral(3, 3, 500), Viral(6, 1, 5000)),
        ),
        Scenario(
            name="1p4v-to-1p10v",
            description="steady growth on hosts run at 1p4v, raised to 1p10v at step 6",
            tenants=50,
            new_tenants_per_step=10,
            initial_vms=(4, 20),
            growth_per_step=0.1,
            density=DensityChange(6, 4, 10),
        ),
    )
}


def preset(name: str, **overrides: Any) -> Scenario:
    """A named scenario with some fields changed; unknown names or fields are a 422."""
    if name not in PRESETS:
        raise InvalidInput(
            f"unknown scenario '{name}' (known: {', '.join(PRESETS)})", field="scenario.name"
        )
    return with_overrides(PRESETS[name], overrides)


def with_overrides(base: Scenario, overrides: dict[str, Any]) -> Scenario:
    allowed = {f.name for f in fields(Scenario)}
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in allowed or key == "name":
            raise InvalidInput(f"unknown scenario field '{key}'", field=f"scenario.{key}")
        try:
            if key == "viral":
                value = tuple(Viral(**v) if isinstance(v, dict) else Viral(*v) for v in value)
            elif key == "density":
                value = DensityChange(**value) if isinstance(value, dict) else DensityChange(*value)
            elif key == "flavors":
                value = tuple((str(n), float(w)) for n, w in value)
            elif key == "initial_vms":
                value = (int(value[0]), int(value[1]))
        except (TypeError, ValueError, IndexError):
            raise InvalidInput(
                f"malformed scenario field '{key}'", field=f"scenario.{key}"
            ) from None
        clean[key] = value
    steps = clean.get("steps")
    if isinstance(steps, int):
        # A shorter horizon drops the preset's own events that fall beyond it.
        if "viral" not in clean:
            clean["viral"] = tuple(v for v in base.viral if v.step < steps)
        if "density" not in clean and base.density is not None and base.density.step >= steps:
            clean["density"] = None
    return replace(base, **clean)
