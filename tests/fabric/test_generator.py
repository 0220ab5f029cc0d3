"""The generator: deterministic, the documented sizes, and fabrics that pass their check."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

import pytest

from fuyun.domain.enums import FabricKind, SwitchRole
from fuyun.fabric.catalog import FLAVORS, SERVER_MODELS, flavor, server_model
from fuyun.fabric.check import check_fabric
from fuyun.fabric.generator import PRESETS, GeneratorParams, generate, list_presets
from fuyun.fabric.spec import FabricSpec


@pytest.fixture(scope="module")
def tencent() -> tuple[FabricSpec, float]:
    started = time.perf_counter()
    spec = generate("tencent-2010")
    return spec, time.perf_counter() - started


def test_same_seed_same_fabric_other_seed_other_fabric() -> None:
    assert generate("default", seed=7) == generate("default", seed=7)
    assert generate("small", seed=1) != generate("small", seed=2)


def test_small_has_both_fabric_kinds_and_few_hosts(small: FabricSpec) -> None:
    kinds = Counter(m.fabric_kind for m in small.modules)
    assert kinds == {FabricKind.ROUTED_CLOS: 1, FabricKind.SWITCHED_CLOS: 1}
    assert 1 <= len(small.sites) <= 2
    assert 4 <= len(small.hosts) <= 2 * 3 * 4
    assert small.interconnects and all(i.l2_extension.extends_l2 for i in small.interconnects)


@pytest.mark.parametrize("seed", range(5))
def test_small_has_both_kinds_for_any_seed(seed: int) -> None:
    spec = generate("small", seed=seed)
    assert {m.fabric_kind for m in spec.modules} == set(FabricKind)
    assert check_fabric(spec) == []


def test_default_size() -> None:
    spec = generate("default")
    assert (len(spec.sites), len(spec.modules), len(spec.hosts)) == (2, 8, 2 * 4 * 20 * 40)
    assert check_fabric(spec) == []


def test_tencent_2010_size_and_check(tencent: tuple[FabricSpec, float]) -> None:
    """Generation and check are timed within the start-up that bench_inventory.py measures."""
    spec, _ = tencent
    assert len(spec.hosts) >= 100_000
    assert (len(spec.sites), len(spec.modules)) == (5, 50)
    roles = Counter(s.role for s in spec.switches)
    assert roles == {SwitchRole.TOR: 50 * 50, SwitchRole.AGGREGATION: 2 * 50}
    assert check_fabric(spec) == []


def test_tencent_2010_looks_like_2010(tencent: tuple[FabricSpec, float]) -> None:
    spec, _ = tencent
    tors = [s for s in spec.switches if s.role is SwitchRole.TOR]
    aggs = [s for s in spec.switches if s.role is SwitchRole.AGGREGATION]
    assert all(16_384 <= t.mac_capacity <= 32_768 for t in tors)
    assert all(t.vlan_capacity <= 4_000 and t.port_count == 48 for t in tors)
    assert all(a.mac_capacity == 131_072 and a.arp_capacity == 65_536 for a in aggs)
    assert all(4 <= h.max_vms <= 10 for h in spec.hosts)
    assert {h.model for h in spec.hosts} <= {m.name for m in SERVER_MODELS}
    assert {s.city for s in spec.sites} >= {"Shenzhen", "Shanghai", "Tianjin", "Chengdu"}
    assert {m.l2_technology for m in spec.modules} >= {None, *["vpc", "irf", "trill"]}
    assert {s.platform for s in spec.switches} == {"nxos", "comware"}
    assert {i.l2_extension for i in spec.interconnects} >= {"none", "otv"}
    addresses = [d.mgmt_address for d in (*spec.switches, *spec.hosts)]
    assert None not in addresses and len(set(addresses)) == len(addresses)


def test_names_follow_the_convention(small: FabricSpec) -> None:
    site = small.sites[0].name
    assert site == "sz1"
    assert small.modules[0].name == "sz1-m01"
    assert [s.name for s in small.switches[:3]] == ["sz1-m01-agg1", "sz1-m01-agg2", "sz1-m01-t01"]
    assert small.hosts[0].name == "sz1-m01-t01-h01"


def test_presets_are_listed_smallest_first() -> None:
    names = [p.name for p in list_presets()]
    assert names == ["small", "default", "tencent-2010"]
    assert set(names) == set(PRESETS)


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="hosts_per_tor"):
        replace(PRESETS["small"], hosts_per_tor=(4, 60))
    with pytest.raises(ValueError, match="server_models"):
        replace(PRESETS["small"], server_models=(("homebrew", 1.0),))
    with pytest.raises(KeyError):
        generate("huge")


def test_custom_parameters() -> None:
    params = GeneratorParams(
        name="one", sites=1, modules_per_site=3, tors_per_module=(2, 2), hosts_per_tor=(1, 1)
    )
    spec = generate(params, seed=3)
    assert (len(spec.modules), len(spec.hosts), spec.interconnects) == (3, 6, [])
    assert check_fabric(spec) == []


def test_catalog() -> None:
    assert server_model("std-2010-1g").cores == 12
    assert server_model("std-2010-10g").ram_gb == 96
    small_flavor = flavor("s1.small")
    assert (small_flavor.vcpus, small_flavor.ram_mb, small_flavor.disk_gb) == (1, 2048, 20)
    assert [f.name for f in FLAVORS] == ["s1.small", "s1.medium", "s1.large", "s1.xlarge"]
    assert all(f.bandwidth_mbps > 0 for f in FLAVORS)
