"""What-if: one scenario on two fabrics, and remedies ranked by how far they push exhaustion."""

from __future__ import annotations

from fuyun.domain.enums import FabricKind
from fuyun.fabric.generator import generate
from fuyun.planning import fabrics
from fuyun.planning.plan import Options, compare, plan
from tests.planning.conftest import fabric, scenario


def test_switched_clos_removes_the_spill_a_routed_tor_forces() -> None:
    routed = fabric(kind="routed-clos", tors=2, hosts=1, max_vms=2)
    switched = fabrics.to_switched(routed)
    assert {m.fabric_kind for m in switched.modules} == {FabricKind.SWITCHED_CLOS}
    out = compare(routed, switched, scenario(initial_vms=(3, 3), steps=1), Options(nplus1=False))
    assert (out["a"]["spills"], out["b"]["spills"]) == (1, 0)
    assert out["delta"]["spills"] == -1
    assert (out["a"]["spans"]["max_tors"], out["b"]["spans"]["max_tors"]) == (1, 2)


def test_a_second_site_over_otv_keeps_addresses_when_the_first_is_lost() -> None:
    one = fabric()
    two = fabrics.add_site(one, "s1", "otv")
    assert [s.name for s in two.sites] == ["s1", "sz1"]
    assert len(two.hosts) == 2 * len(one.hosts)
    assert two.sites[1].aggregate is not None
    assert not two.sites[1].aggregate.overlaps(two.sites[0].aggregate)  # type: ignore[arg-type]
    out = compare(one, two, scenario(initial_vms=(3, 3), steps=1))
    site_a = next(d for d in out["a"]["nplus1"]["domains"] if d["kind"] == "site")
    site_b = next(d for d in out["b"]["nplus1"]["domains"] if d["name"] == "s1")
    assert (site_a["failed"], site_b["kept_ip"], site_b["failed"]) == (3, 3, 0)


def test_remedies_are_ranked_by_how_far_they_push_exhaustion() -> None:
    # 12 slots, 5 more VMs a step: refused from step 2. Another module (12 more slots)
    # or another site pushes that to step 4 (24 slots hold 5 steps' 25 VMs but 24).
    sc = scenario(new_tenants_per_step=1, steps=6)
    result = plan(fabric(), sc, Options(nplus1=False))
    assert result.first_unplaced_step == 2
    rows = {r["remedy"]: r for r in result.remedies}
    assert rows["another-module"]["first_unplaced_step"] == 4
    assert rows["another-module"]["pushed_steps"] == 2
    assert rows["another-module"]["hosts_added"] == 4
    assert rows["another-site"]["pushed_steps"] == 2
    assert rows["growth-new-vlan"]["pushed_steps"] == 0
    assert [r["rank"] for r in result.remedies] == [1, 2, 3]
    assert result.remedies[-1]["remedy"] == "growth-new-vlan"


def test_add_module_copies_the_standard_block() -> None:
    spec = generate("small")
    site = spec.sites[0].name
    more = fabrics.add_module(spec, site)
    new = [m for m in more.modules if m not in spec.modules]
    assert len(new) == 1 and new[0].site == site
    block = [h for h in more.hosts if h.name.startswith(new[0].name)]
    first = [h for h in spec.hosts if h.name.startswith(f"{site}-m01")]
    assert len(block) == len(first)
