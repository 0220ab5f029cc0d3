"""The store on SQLite and PostgreSQL alike: schema, constraints, time zones, claims."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuyun.services.capacity import Demand, claim_host, claim_hosts, release_host
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade
from fuyun.store.models import AuditEvent, Base, Host, Module, ServerModel, Site, Switch, Tenant


def _tiny_fabric(db: Database) -> uuid.UUID:
    with db.write_session() as s:
        site = Site(name="sz1", city="Shenzhen")
        s.add(site)
        s.flush()
        module = Module(name="sz1-m01", site_id=site.id, fabric_kind="routed-clos")
        s.add(module)
        s.flush()
        tor = Switch(
            name="sz1-m01-t01",
            site_id=site.id,
            module_id=module.id,
            role="tor",
            platform="nxos",
            mac_capacity=16384,
            arp_capacity=8192,
            vlan_capacity=1000,
            acl_capacity=2000,
        )
        model = ServerModel(
            name="std", cores=12, ram_mb=98304, disk_gb=2000, nic_count=2, nic_speed_mbps=10000
        )
        s.add_all([tor, model])
        s.flush()
        return _add_host(s, "h1", tor, model.id)


def _add_host(s: Session, name: str, tor: Switch, model_id: uuid.UUID) -> uuid.UUID:
    """A 12-core host for two VMs under ``tor``."""
    host = Host(
        name=name,
        site_id=tor.site_id,
        module_id=tor.module_id,
        tor_id=tor.id,
        server_model_id=model_id,
        vcpus=12,
        ram_mb=98304,
        disk_gb=2000,
        nic_mbps=20000,
        max_vms=2,
    )
    s.add(host)
    s.flush()
    return host.id


def test_migrations_create_every_table(any_db: Database) -> None:
    tables = set(inspect(any_db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_upgrade_twice_is_a_no_op(any_db: Database) -> None:
    upgrade(any_db.engine)
    upgrade(any_db.engine)


def test_times_come_back_as_utc(any_db: Database) -> None:
    with any_db.write_session() as s:
        s.add(
            AuditEvent(
                actor="t",
                action="x",
                object_type="y",
                result="success",
                detail={},
                at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                actor_id=None,
                tenant_id=None,
                object_id=None,
            )
        )
    with any_db.read_session() as s:
        at = s.scalar(select(AuditEvent.at))
    assert at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert at is not None and at.tzinfo is not None


def test_unique_names_are_enforced(any_db: Database) -> None:
    with any_db.write_session() as s:
        s.add(Tenant(name="acme"))
    with pytest.raises(IntegrityError), any_db.write_session() as s:
        s.add(Tenant(name="acme"))


def test_write_session_rolls_back_on_error(any_db: Database) -> None:
    with pytest.raises(RuntimeError), any_db.write_session() as s:
        s.add(Tenant(name="half-written"))
        s.flush()
        raise RuntimeError("boom")
    with any_db.read_session() as s:
        assert s.scalar(select(Tenant).where(Tenant.name == "half-written")) is None


def test_host_claims_never_overcommit(any_db: Database) -> None:
    host_id = _tiny_fabric(any_db)
    demand = Demand(vcpus=4, ram_mb=4096, disk_gb=20)
    with any_db.write_session() as s:
        assert claim_host(s, host_id, demand, cpu_ratio=1.0, ram_ratio=1.0)
        assert claim_host(s, host_id, demand, cpu_ratio=1.0, ram_ratio=1.0)
        # Density limit (max_vms=2) stops the third.
        assert not claim_host(s, host_id, demand, cpu_ratio=1.0, ram_ratio=1.0)
    with any_db.write_session() as s:
        release_host(s, host_id, demand)
        # One slot free, but 4 of 12 vCPUs are used at ratio 1.0: 9 more do not fit.
        assert not claim_host(s, host_id, Demand(9, 1024, 10), cpu_ratio=1.0, ram_ratio=1.0)
        assert claim_host(s, host_id, Demand(9, 1024, 10), cpu_ratio=2.0, ram_ratio=1.0)
    with any_db.read_session() as s:
        host = s.get(Host, host_id)
        assert host is not None and host.vm_count == 2 and host.used_vcpus == 13


def _second_host(db: Database, first: uuid.UUID) -> uuid.UUID:
    with db.write_session() as s:
        h1 = s.get_one(Host, first)
        return _add_host(s, "h2", s.get_one(Switch, h1.tor_id), h1.server_model_id)


def test_claiming_many_hosts_at_once_names_the_refusers_and_claims_the_rest_once(
    any_db: Database,
) -> None:
    h1 = _tiny_fabric(any_db)
    h2 = _second_host(any_db, h1)
    one, two = Demand(2, 1024, 10), Demand(4, 2048, 20, vms=2)
    with any_db.write_session() as s:
        assert claim_hosts(s, sorted([(h1, one), (h2, two)]), cpu_ratio=1.0, ram_ratio=1.0) == set()
    with any_db.write_session() as s:
        # h2 is at its density limit: it refuses, h1 takes its claim exactly once.
        lost = claim_hosts(s, sorted([(h1, one), (h2, one)]), cpu_ratio=1.0, ram_ratio=1.0)
        assert lost == {h2}
    with any_db.read_session() as s:
        a, b = s.get_one(Host, h1), s.get_one(Host, h2)
        assert (a.vm_count, a.used_vcpus, a.used_ram_mb, a.used_disk_gb) == (2, 4, 2048, 20)
        assert (b.vm_count, b.used_vcpus, b.used_ram_mb, b.used_disk_gb) == (2, 4, 2048, 20)


def test_release_below_zero_is_refused_by_the_schema(any_db: Database) -> None:
    host_id = _tiny_fabric(any_db)
    with pytest.raises(IntegrityError), any_db.write_session() as s:
        release_host(s, host_id, Demand(1, 1, 1))


def test_maintenance_host_cannot_be_claimed(any_db: Database) -> None:
    host_id = _tiny_fabric(any_db)
    with any_db.write_session() as s:
        host = s.get(Host, host_id)
        assert host is not None
        host.state = "maintenance"
    with any_db.write_session() as s:
        assert not claim_host(s, host_id, Demand(1, 1, 1), cpu_ratio=4, ram_ratio=1)
