"""Cross-site DR: an HA group spread across sites, and a site evacuation plan."""

from __future__ import annotations

from fuyun.services import groups
from fuyun.services.migration import dr
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from tests.services.migration.conftest import make_world, small_spec


def test_site_plan_lists_who_keeps_the_ip_and_who_needs_new_addresses(db: Database) -> None:
    # Both modules switched and joined by OTV, but "web" (sz1) and "db" (sh1) got the
    # same VLAN number from their modules' pools: extending web's would merge them.
    w = make_world(db, small_spec(both_switched=True), {"web": "sz1-m01", "db": "sh1-m01"})
    groups.create_group(
        db, SYSTEM, name="ha", policy="anti-affinity", level="site", tenant_id=w.tenant_id
    )
    a = w.vm("a", "sz1-m01-t01-h01", group="ha")
    b = w.vm("b", "sh1-m01-t01-h01", network="db", group="ha")
    plan = dr.site_plan(w.rt, SYSTEM, "sz1")
    by_vm = {v.vm: v for v in plan.vms}
    assert set(by_vm) == {"a"}
    assert by_vm["a"].keeps_ip is False
    # web's VLAN 100 is db's VLAN in sh1-m01 too: OTV would merge the two networks.
    assert any("VLAN 100 is in use in module sh1-m01" in r for r in by_vm["a"].reasons)
    [ha] = plan.groups
    assert (ha.group, ha.in_site, ha.elsewhere, ha.survives) == ("ha", 1, 1, True)
    assert b.id != a.id


def test_site_plan_with_an_extendable_vlan(db: Database) -> None:
    w = make_world(db, small_spec(both_switched=True), {"web": "sz1-m01"})
    w.vm("a", "sz1-m01-t01-h01")
    plan = dr.site_plan(w.rt, SYSTEM, "sz1", to_site="sh1")
    [vm] = plan.vms
    assert vm.keeps_ip and vm.target_host and vm.target_host.startswith("sh1-")
    assert vm.interconnects == ["ic-sz1-sh1"]
    assert (plan.keep_ip, plan.readdress) == (1, 0)


def test_routed_module_vms_need_new_addresses(db: Database) -> None:
    w = make_world(db, small_spec(), {"db": "sh1-m01"})
    w.vm("d", "sh1-m01-t01-h01", network="db")
    plan = dr.site_plan(w.rt, SYSTEM, "sh1")
    [vm] = plan.vms
    assert not vm.keeps_ip
    assert any("routed-clos module sh1-m01 cannot extend VLAN" in r for r in vm.reasons)
    assert (plan.keep_ip, plan.readdress) == (0, 1)
