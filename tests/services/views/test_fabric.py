"""The fabric read model: ToR cells add up their hosts, modules their ToRs; operators only."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.domain.enums import HostState, Role
from fuyun.domain.errors import Forbidden, NotFound
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import inventory
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM, Principal
from fuyun.services.views import fabric
from fuyun.store.engine import Database
from fuyun.store.models import Host, Module, Switch

PARTNER = Principal(uuid.uuid4(), "studio-admin", Role.TENANT_ADMIN, uuid.uuid4())


@pytest.fixture
def small(db: Database) -> Database:
    bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small")
    return db


def test_the_map_counts_every_host_once_and_marks_maintenance(small: Database) -> None:
    with small.read_session() as s:
        hosts = s.scalar(select(func.count()).select_from(Host))
        modules = s.scalar(select(func.count()).select_from(Module))
        one = s.scalars(select(Host).order_by(Host.name).limit(1)).one()
        with_used = s.scalars(select(Switch).where(Switch.id == one.tor_id)).one()
    inventory.set_host_state(small, SYSTEM, one.id, HostState.MAINTENANCE)
    sites = fabric.fabric_map(small, SYSTEM, cpu_ratio=4.0, ram_ratio=1.0)
    cells = [t for site in sites for m in site.modules for t in m.tors]
    assert sum(len(site.modules) for site in sites) == modules
    assert sum(t.hosts for t in cells) == hosts
    [cell] = [t for t in cells if t.switch.id == with_used.id]
    assert cell.maintenance == 1 and cell.failed == 0
    assert cell.usage.vcpus_cap > 0 and cell.usage.value("cpu") == 0.0
    assert fabric.host_states(small, SYSTEM) == {
        HostState.ACTIVE.value: hosts - 1,
        HostState.MAINTENANCE.value: 1,
    }


def test_a_switch_table_near_its_limit_is_hot_and_the_module_shows_its_worst(
    small: Database,
) -> None:
    with small.write_session() as s:
        tor = s.scalars(select(Switch).where(Switch.role == "tor").order_by(Switch.name)).first()
        assert tor is not None
        tor.used_mac = int(tor.mac_capacity * 0.9)
        tor_id, module_id = tor.id, tor.module_id
    [hot] = fabric.hot_switch_rows(small, SYSTEM, threshold=0.8)
    assert hot.id == tor_id and hot.usage.mac == pytest.approx(0.9, abs=0.001)
    grid = fabric.module_grid(small, SYSTEM, module_id, cpu_ratio=4.0, ram_ratio=1.0)
    module = next(m for site in fabric.fabric_map(small, SYSTEM, 4.0, 1.0) for m in site.modules
                  if m.id == module_id)  # fmt: skip
    assert module.usage.mac == pytest.approx(0.9, abs=0.001)
    [cells] = [cells for sw, cells in grid.rows if sw.id == tor_id]
    assert cells and all(c.usage.mac == pytest.approx(0.9, abs=0.001) for c in cells)
    assert sum(len(c) for _, c in grid.rows) == module.hosts


def test_partners_do_not_see_the_fabric_and_a_guessed_module_is_404(small: Database) -> None:
    for read in (
        lambda: fabric.fabric_map(small, PARTNER, 4.0, 1.0),
        lambda: fabric.hot_switch_rows(small, PARTNER, 0.8),
        lambda: fabric.host_states(small, PARTNER),
    ):
        with pytest.raises(Forbidden):
            read()
    with pytest.raises(NotFound):
        fabric.module_grid(small, SYSTEM, uuid.uuid4(), 4.0, 1.0)


def test_ratio_is_clamped_and_nothing_of_nothing_is_zero() -> None:
    assert fabric.ratio(5, 0) == 0.0 and fabric.ratio(150, 100) == 1.0
    assert fabric.ratio(-1, 10) == 0.0 and fabric.ratio(1, 4) == 0.25
