"""Evacuate a host, drain a ToR, rebalance a module: anti-affinity, limits, progress."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

from sqlalchemy import select

from fuyun.services import groups
from fuyun.services.migration import batch
from fuyun.services.principal import SYSTEM
from fuyun.store.models import Host, MigrationBatch, Vm, Workflow
from tests.services.migration.conftest import World


def _hosts(w: World, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {i: w.host_of(i) for i in ids}


def test_evacuate_host_respects_anti_affinity(world: World) -> None:
    groups.create_group(
        world.db, SYSTEM, name="ha", policy="anti-affinity", level="host", tenant_id=world.tenant_id
    )
    a = world.vm("a", "sz1-m01-t01-h01", group="ha")
    b = world.vm("b", "sz1-m01-t01-h02", group="ha")
    c = world.vm("c", "sz1-m01-t01-h01")
    batch_id = batch.start(world.rt, SYSTEM, "evacuate-host", "sz1-m01-t01-h01", background=False)
    row = batch.get(world.rt, SYSTEM, batch_id)
    assert (row.state, row.total, row.moved, row.failed) == ("succeeded", 2, 2, 0)
    where = _hosts(world, [a.id, b.id, c.id])
    assert where[b.id] == "sz1-m01-t01-h02"
    assert where[a.id] not in ("sz1-m01-t01-h01", "sz1-m01-t01-h02"), "anti-affinity kept"
    assert where[c.id] != "sz1-m01-t01-h01"
    with world.db.read_session() as s:
        host = s.scalar(select(Host).where(Host.name == "sz1-m01-t01-h01"))
        assert host is not None and (host.state, host.vm_count) == ("maintenance", 0)
    assert {i["state"] for i in row.items} == {"moved"}
    assert all(i["scope"] in ("same-tor", "same-module") for i in row.items)


def test_drain_routed_tor_reports_why_each_vm_cannot_leave(world: World) -> None:
    d1 = world.vm("d1", "sh1-m01-t01-h01", network="db")
    world.vm("d2", "sh1-m01-t01-h02", network="db")
    batch_id = batch.start(world.rt, SYSTEM, "drain-tor", "sh1-m01-t01", background=False)
    row = batch.get(world.rt, SYSTEM, batch_id)
    assert (row.state, row.moved, row.failed) == ("failed", 0, 2)
    assert all("routed-clos module sh1-m01 confines VLAN" in i["error"] for i in row.items), [
        i["error"] for i in row.items
    ]
    assert world.host_of(d1.id) == "sh1-m01-t01-h01"


def test_drain_tor_within_limits(world: World) -> None:
    made = [world.vm(f"v{i}", f"sz1-m01-t01-h0{1 + i % 2}") for i in range(6)]
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    lock = threading.Lock()
    holders: dict[uuid.UUID, list[str]] = {}

    def watch(wf: uuid.UUID, step: str) -> None:
        if step not in ("reserve", "release"):
            return
        with world.db.read_session() as s:
            w = s.get(Workflow, wf)
            assert w is not None
            vm = s.get(Vm, uuid.UUID(w.payload["vm_id"]))
            assert vm is not None
            src = s.get(Host, vm.host_id) if step == "reserve" else None
        with lock:
            if step == "reserve" and src is not None:
                holders[wf] = [src.name, str(w.payload["target"])]
                for h in holders[wf]:
                    active[h] += 1
                    peak[h] = max(peak[h], active[h])
            elif step == "release":
                for h in holders.pop(wf, []):
                    active[h] -= 1

    world.rt.engine.before_step = watch
    limits = batch.Limits(per_host=1, per_tor=8, per_site=8, workers=4)
    batch_id = batch.start(
        world.rt, SYSTEM, "drain-tor", "sz1-m01-t01", limits=limits, background=False
    )
    row = batch.get(world.rt, SYSTEM, batch_id)
    assert (row.state, row.moved) == ("succeeded", 6)
    assert max(peak.values()) == 1, peak
    assert all(not world.host_of(v.id).startswith("sz1-m01-t01-") for v in made)


def test_rebalance_moves_from_the_fullest_host_within_the_module(world: World) -> None:
    for i in range(4):
        world.vm(f"v{i}", "sz1-m01-t02-h01")
    batch_id = batch.start(world.rt, SYSTEM, "rebalance-module", "sz1-m01", background=False)
    row = batch.get(world.rt, SYSTEM, batch_id)
    assert row.moved >= 1 and row.failed == 0, [i["error"] for i in row.items]
    with world.db.read_session() as s:
        counts = [
            h.vm_count for h in s.scalars(select(Host).where(Host.name.startswith("sz1-m01-")))
        ]
    assert max(counts) < 4


def test_limits_are_checked() -> None:
    import pytest

    from fuyun.domain.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        batch.Limits(per_tor=0).check()
    assert err.value.field == "per_tor"


def test_a_batch_left_running_is_marked_interrupted(world: World) -> None:
    with world.db.write_session() as s:
        s.add(MigrationBatch(kind="drain-tor", target="x", state="running", items=[], limits={}))
    assert batch.interrupt_stale(world.db) == 1
    assert [b.state for b in batch.recent(world.rt, SYSTEM)] == ["interrupted"]
