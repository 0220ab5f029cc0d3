"""Every scope class on the `small` fabric, feasible and refused, with its reasons."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fuyun.domain.errors import Conflict, InvalidInput
from fuyun.services import inventory
from fuyun.services.address_plan import allocate_vlan
from fuyun.services.migration import service
from fuyun.services.migration.plan import Target
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from fuyun.store.models import (
    Module,
    Network,
    Segment,
    SpanMember,
    Switch,
    VlanAllocation,
    VlanPool,
)
from tests.services.migration.conftest import World, make_world, small_spec
from tests.services.migration.test_workflow import identity


def test_same_tor_changes_no_span(world: World) -> None:
    vm = world.vm("a", "sz1-m01-t01-h01")
    plan = service.plan(world.rt, SYSTEM, vm.id, Target(host="sz1-m01-t01-h02"))
    assert (plan.scope, plan.feasible, plan.reasons) == ("same-tor", True, [])
    assert [p.span for p in plan.ports] == ["unchanged"]
    assert plan.ports[0].extend == [] and plan.ports[0].shrink == []
    assert plan.devices == ["host sz1-m01-t01-h02 (linux-bridge, vswitch)"]


def test_same_module_switched_extends_to_the_new_tor(world: World) -> None:
    vm = world.vm("a", "sz1-m01-t01-h01")
    plan = service.plan(world.rt, SYSTEM, vm.id, Target(host="sz1-m01-t03-h01"))
    assert (plan.scope, plan.feasible) == ("same-module", True)
    claims = {(c.switch, c.table): (c.used, c.after) for c in plan.ports[0].extend}
    assert claims[("sz1-m01-t03", "vlans")] == (0, 1)
    shrink = {(c.switch, c.table): (c.used, c.after) for c in plan.ports[0].shrink}
    assert shrink[("sz1-m01-t01", "vlans")] == (1, 0), "the source ToR leaves the span"


def test_same_module_routed_is_refused_with_the_tor(world: World) -> None:
    vm = world.vm("d", "sh1-m01-t01-h01", network="db")
    plan = service.plan(world.rt, SYSTEM, vm.id, Target(host="sh1-m01-t02-h01"))
    assert (plan.scope, plan.feasible) == ("same-module", False)
    assert plan.reasons == [
        "network db: routed-clos module sh1-m01 confines VLAN "
        f"{plan.ports[0].vlan} to ToR sh1-m01-t01"
    ]


def test_cross_site_to_a_routed_module_is_refused(world: World) -> None:
    vm = world.vm("a", "sz1-m01-t01-h01")
    plan = service.plan(world.rt, SYSTEM, vm.id, Target(host="sh1-m01-t01-h01"))
    assert (plan.scope, plan.feasible) == ("cross-site", False)
    assert "module sh1-m01 is routed-clos" in plan.reasons[0]


def test_cross_site_over_otv_when_both_ends_switch(db: Database) -> None:
    w = make_world(db, small_spec(both_switched=True), {"web": "sz1-m01"})
    vm = w.vm("a", "sz1-m01-t01-h01")
    plan = service.plan(w.rt, SYSTEM, vm.id, Target(site="sh1"))
    assert (plan.scope, plan.feasible, plan.chosen_by) == ("cross-site", True, "scheduler")
    assert plan.target_host is not None and plan.target_host.startswith("sh1-")
    assert plan.ports[0].interconnect == "ic-sz1-sh1"
    assert "over ic-sz1-sh1 (otv)" in plan.ports[0].span
    before = identity(w.db, vm.id)
    result = service.migrate(w.rt, SYSTEM, vm.id, Target(site="sh1"))
    assert result.state == "succeeded"
    assert w.host_of(vm.id) == plan.target_host
    assert identity(w.db, vm.id) == before, "IP, MAC and groups survive the move"
    with w.db.read_session() as s:
        tors = set(
            s.scalars(select(Switch.name).join(SpanMember, SpanMember.switch_id == Switch.id))
        )
    assert tors == {plan.target_tor}, "the VLAN is carried over OTV to the new ToR only"


def _held_in(db: Database, module: str) -> dict[int, str]:
    """VLAN -> network name for every tag held in ``module``'s pool."""
    with db.read_session() as s:
        rows = s.execute(
            select(VlanAllocation.vlan, Network.name)
            .join(VlanPool, VlanPool.id == VlanAllocation.pool_id)
            .join(Module, Module.id == VlanPool.module_id)
            .join(Segment, Segment.id == VlanAllocation.segment_id)
            .join(Network, Network.id == Segment.network_id)
            .where(Module.name == module)
        )
        return {vlan: name for vlan, name in rows}


def test_an_extended_vlan_is_held_in_the_remote_pool_until_the_last_port_leaves(
    db: Database,
) -> None:
    w = make_world(db, small_spec(both_switched=True), {"web": "sz1-m01"})
    vm = w.vm("a", "sz1-m01-t01-h01")
    vlan = next(iter(_held_in(w.db, "sz1-m01")))
    assert vlan not in _held_in(w.db, "sh1-m01")
    service.migrate(w.rt, SYSTEM, vm.id, Target(site="sh1"))
    assert _held_in(w.db, "sh1-m01").get(vlan) == "web", "carried over OTV: held there"
    # A network of that module asking for the same tag is refused: no silent merge.
    with w.db.write_session() as s:
        pool = s.scalar(
            select(VlanPool)
            .join(Module, Module.id == VlanPool.module_id)
            .where(Module.name == "sh1-m01")
        )
        other = s.scalar(select(Segment.id).join(Network).where(Network.name == "web"))
        assert pool is not None and other is not None
        with pytest.raises(Conflict, match=f"VLAN {vlan} is taken"):
            allocate_vlan(s, pool, other, wanted=vlan)
    service.migrate(w.rt, SYSTEM, vm.id, Target(host="sz1-m01-t01-h01"))
    assert vlan not in _held_in(w.db, "sh1-m01"), "back home: the remote pool gets it back"
    assert _held_in(w.db, "sz1-m01").get(vlan) == "web"


def test_cross_module_needs_an_l2_extension(db: Database) -> None:
    w = make_world(db, small_spec(both_switched=True, modules_per_site=2), {"web": "sz1-m01"})
    vm = w.vm("a", "sz1-m01-t01-h01")
    plan = service.plan(w.rt, SYSTEM, vm.id, Target(module="sz1-m02"))
    assert plan.feasible is False and plan.target_host is None
    assert any(
        "sz1-m01 and sz1-m02 of site sz1 are joined by routing only" in r for r in plan.reasons
    )
    one = service.plan(w.rt, SYSTEM, vm.id, Target(host="sz1-m02-t01-h01"))
    assert one.scope == "cross-module" and not one.feasible


def test_cross_module_over_a_module_link_that_extends_l2(db: Database) -> None:
    w = make_world(db, small_spec(both_switched=True, modules_per_site=2), {"web": "sz1-m01"})
    vm = w.vm("a", "sz1-m01-t01-h01")
    link = inventory.create_object(
        w.db,
        SYSTEM,
        "module-link",
        {
            "name": "sz1-m01-m02",
            "module_a": "sz1-m01",
            "module_b": "sz1-m02",
            "l2_extension": "none",
        },
    )
    refused = service.plan(w.rt, SYSTEM, vm.id, Target(module="sz1-m02"))
    assert not refused.feasible
    assert any("module link sz1-m01-m02 does not extend L2" in r for r in refused.reasons)
    inventory.update_object(w.db, SYSTEM, "module-link", link.id, {"l2_extension": "direct"})
    plan = service.plan(w.rt, SYSTEM, vm.id, Target(module="sz1-m02"))
    assert (plan.scope, plan.feasible, plan.chosen_by) == ("cross-module", True, "scheduler")
    assert plan.target_host is not None and plan.target_host.startswith("sz1-m02-")
    assert "over sz1-m01-m02 (direct)" in plan.ports[0].span
    vlan = plan.ports[0].vlan
    before = identity(w.db, vm.id)
    assert service.migrate(w.rt, SYSTEM, vm.id, Target(module="sz1-m02")).state == "succeeded"
    assert w.host_of(vm.id).startswith("sz1-m02-")
    assert identity(w.db, vm.id) == before, "IP, MAC and groups survive the move"
    assert _held_in(w.db, "sz1-m02").get(vlan) == "web"
    service.migrate(w.rt, SYSTEM, vm.id, Target(host="sz1-m01-t01-h01"))
    assert vlan not in _held_in(w.db, "sz1-m02")


def test_every_reason_is_listed(world: World) -> None:
    vm = world.vm("a", "sz1-m01-t01-h01")
    with world.db.write_session() as s:
        from sqlalchemy import update

        from fuyun.store.models import Host

        s.execute(update(Host).where(Host.name == "sh1-m01-t01-h01").values(state="maintenance"))
    world.rt.placement.invalidate()
    plan = service.plan(world.rt, SYSTEM, vm.id, Target(host="sh1-m01-t01-h01"))
    assert len(plan.reasons) == 2
    assert plan.reasons[0].startswith("host-state:")
    assert "routed-clos" in plan.reasons[1]


def test_refused_move_raises_with_reasons_and_changes_nothing(world: World) -> None:
    vm = world.vm("d", "sh1-m01-t01-h01", network="db")
    with pytest.raises(Conflict) as err:
        service.migrate(world.rt, SYSTEM, vm.id, Target(host="sh1-m01-t02-h01"))
    assert err.value.code == "infeasible" and "confines VLAN" in err.value.message
    assert world.host_of(vm.id) == "sh1-m01-t01-h01"


def test_scheduler_picks_a_target_and_avoids_the_source(world: World) -> None:
    vm = world.vm("d", "sh1-m01-t01-h01", network="db")
    plan = service.plan(world.rt, SYSTEM, vm.id, Target())
    assert plan.feasible and plan.scope == "same-tor"
    assert plan.target_host in ("sh1-m01-t01-h02", "sh1-m01-t01-h03")


def test_one_target_only(world: World) -> None:
    vm = world.vm("a", "sz1-m01-t01-h01")
    with pytest.raises(InvalidInput) as err:
        service.plan(world.rt, SYSTEM, vm.id, Target(host="x", site="sh1"))
    assert err.value.field == "to"
