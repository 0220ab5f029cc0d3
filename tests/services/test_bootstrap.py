"""First start and restart: fabric, operator, demo partners — once, and idempotent."""

from __future__ import annotations

from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database
from fuyun.store.models import Host, Tenant, User, Vm


def test_demo_seeds_partners_with_running_vms_once(db: Database) -> None:
    settings = Settings(database_url=db.url)
    first = bootstrap(db, settings, FakeComputeDriver(), fabric="small", demo=True)
    assert first.fabric_loaded and first.admin_password
    assert first.demo_vms == 20  # 6 + 2 + 8 + 4
    again = bootstrap(db, settings, FakeComputeDriver(), fabric="small", demo=True)
    assert not again.fabric_loaded and again.admin_password is None and again.demo_vms == 0
    assert again.token != first.token
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Tenant)) == 3
        assert s.scalar(select(func.count()).select_from(User)) == 4
        assert set(s.scalars(select(Vm.state))) == {"active"}
        assert s.scalar(select(func.sum(Host.vm_count))) == 20
