"""``fuyun plan`` on the live store: it reads the store's load and changes nothing in it."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.domain.errors import Forbidden, InvalidInput
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import planning
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM, Principal
from fuyun.store.engine import Database
from fuyun.store.models import Host, Vm
from fuyun.store.models.base import Base


def _snapshot(db: Database) -> tuple[dict[str, int], str]:
    """Row counts per table and one digest over every row of every table."""
    counts: dict[str, int] = {}
    digest = hashlib.sha256()
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = sorted(repr(tuple(r)) for r in conn.execute(table.select()))
            counts[table.name] = len(rows)
            for row in rows:
                digest.update(row.encode())
    return counts, digest.hexdigest()


@pytest.fixture
def demo(db: Database) -> tuple[Database, Settings]:
    settings = Settings(database_url=db.url)
    bootstrap(db, settings, FakeComputeDriver(), fabric="small", demo=True)
    return db, settings


def test_a_plan_and_a_what_if_leave_the_live_store_unchanged(
    demo: tuple[Database, Settings],
) -> None:
    db, settings = demo
    before = _snapshot(db)
    assert before[0]["vms"] == 20
    out = planning.run(db, settings, SYSTEM, planning.PlanRequest(scenario="viral-app"))
    assert out["placed"] > 0 and out["remedies"] and out["nplus1"]["checked"]["site"] == 2
    what_if = planning.PlanRequest(
        compare_with=planning.FabricSource(all_switched=True, add_site_like="sz1"),
        overrides={"steps": 4},
    )
    planning.run(db, settings, SYSTEM, what_if)
    assert _snapshot(db) == before


def test_the_live_baseline_carries_the_stores_load(demo: tuple[Database, Settings]) -> None:
    db, settings = demo
    with db.read_session() as s:
        base = planning.read_baseline(s)
        used = s.scalar(select(func.sum(Host.used_vcpus)))
        vms = s.scalar(select(func.count()).select_from(Vm).where(Vm.host_id.is_not(None)))
    assert len(base.vms) == vms == 20
    assert sum(u[0] for u in base.host_use.values()) == used
    assert base.networks and all(n.segments for n in base.networks)
    # With nothing new asked, the plan still sees the 20 VMs and re-places them on N+1.
    req = planning.PlanRequest(
        overrides={"tenants": 0, "new_tenants_per_step": 0, "steps": 1}, remedies=False
    )
    out = planning.run(db, settings, SYSTEM, req)
    assert out["demanded"] == 0 and out["timeline"][0]["density"]["used"] == 20
    sites = [d for d in out["nplus1"]["domains"] if d["kind"] == "site"]
    assert sum(d["vms"] for d in sites) == 20


def test_only_operators_plan_and_bad_input_names_the_field(
    demo: tuple[Database, Settings],
) -> None:
    db, settings = demo
    tenant = Principal(None, "t", SYSTEM.role.__class__("tenant-admin"), None)
    with pytest.raises(Forbidden):
        planning.run(db, settings, tenant, planning.PlanRequest())
    with pytest.raises(InvalidInput) as exc:
        planning.run(db, settings, SYSTEM, planning.PlanRequest(fabric=planning.FabricSource("x")))
    assert exc.value.field == "fabric"
    huge = planning.PlanRequest(overrides={"tenants": 100_000, "initial_vms": (1000, 1000)})
    with pytest.raises(InvalidInput) as exc:
        planning.run(db, settings, SYSTEM, huge)
    assert exc.value.field == "scenario"
