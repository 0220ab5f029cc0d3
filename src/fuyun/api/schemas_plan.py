"""Request bodies of ``POST /plans``: where the fabric comes from, and the scenario."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from fuyun.api.schemas import In

Name = Annotated[str, Field(min_length=1, max_length=64)]


class FabricIn(In):
    name: Name = Field("live", description="`live` (the store, read-only) or a generator preset")
    yaml: str | None = Field(None, max_length=900_000, description="a fabric file instead")
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    switched: list[Name] | None = Field(
        None, max_length=1000, description="routed-clos modules to rebuild as switched-clos"
    )
    all_switched: bool = Field(False, description="rebuild every routed-clos module (TRILL)")
    add_site_like: Name | None = Field(None, description="add a second site built like this one")
    add_site_link: Annotated[str, Field(pattern="^(otv|vpls|direct|none)$")] = "otv"
    add_module_to: Name | None = Field(None, description="add one module to this site")


class ViralIn(In):
    step: Annotated[int, Field(ge=0, le=119)]
    tenants: Annotated[int, Field(ge=1, le=10_000)]
    vms: Annotated[int, Field(ge=1, le=100_000)]


class DensityIn(In):
    step: Annotated[int, Field(ge=0, le=119)]
    before: Annotated[int, Field(ge=1, le=64)]
    after: Annotated[int, Field(ge=1, le=64)]


class ScenarioIn(In):
    """A preset by name; any field given replaces the preset's."""

    name: Name = "steady"
    steps: Annotated[int, Field(ge=1, le=120)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    tenants: Annotated[int, Field(ge=0, le=100_000)] | None = None
    new_tenants_per_step: Annotated[int, Field(ge=0, le=100_000)] | None = None
    initial_vms: (
        tuple[Annotated[int, Field(ge=1, le=100_000)], Annotated[int, Field(ge=1, le=100_000)]]
        | None
    ) = None
    growth_per_step: Annotated[float, Field(ge=0, le=10)] | None = None
    viral: list[ViralIn] | None = Field(None, max_length=50)
    flavors: list[tuple[Name, Annotated[float, Field(ge=0, le=1e6)]]] | None = Field(
        None, max_length=20
    )
    networks_per_tenant: Annotated[int, Field(ge=1, le=16)] | None = None
    growth: Annotated[str, Field(pattern="^(secondary|new-vlan|refuse)$")] | None = None
    prefix_len: Annotated[int, Field(ge=16, le=29)] | None = None
    anti_affinity_share: Annotated[float, Field(ge=0, le=1)] | None = None
    anti_affinity_level: Annotated[str, Field(pattern="^(host|tor|module|site)$")] | None = None
    group_size: Annotated[int, Field(ge=2, le=64)] | None = None
    density: DensityIn | None = None
    strategy: Annotated[str, Field(pattern="^(pack|spread)$")] | None = None
    address_space: Annotated[str, Field(pattern="^(site|tenant)$")] | None = None


class PlanIn(In):
    fabric: FabricIn = Field(default_factory=FabricIn)
    scenario: ScenarioIn = Field(default_factory=ScenarioIn)
    compare_with: FabricIn | None = Field(None, description="a second fabric: a side-by-side")
    remedies: bool = True
    strategies: bool = Field(True, description="the address cost of each growth strategy")
    nplus1: bool = True
    nplus1_limit: Annotated[int, Field(ge=0, le=10_000)] = 200
