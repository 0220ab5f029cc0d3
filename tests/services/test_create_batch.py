"""A batch of VMs is placed and written as one: few statements, the same books as one by one.

Also the scheduler snapshot's switch tables: they follow creates, rollbacks and
deletes exactly (they used to only grow, refusing hosts that had room).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from fuyun.config import Settings
from fuyun.domain.errors import DriverError
from fuyun.drivers.compute import InstanceSpec
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.ipam.addresses import unpack
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import (
    Host,
    IpAllocation,
    Port,
    PortSecurityGroup,
    Quota,
    Switch,
    Tenant,
    Vm,
)
from tests.support.snapshot import assert_snapshot_matches_store


@pytest.fixture
def rt(db: Database) -> Runtime:
    settings = Settings(database_url=db.url)
    driver = FakeComputeDriver()
    bootstrap(db, settings, driver, fabric="default")
    return Runtime(db, settings, driver)


def _tenant(rt: Runtime, name: str) -> Tenant:
    limits = {k: 10**6 for k in ("vms", "vcpus", "ram_mb", "ips", "bandwidth_mbps")}
    return tenants.create_tenant(rt.db, SYSTEM, name=name, limits=limits)


def _network(rt: Runtime, tenant_id: uuid.UUID, cidr: str, **kw: object) -> uuid.UUID:
    ctx = networks.Networking(db=rt.db, settings=rt.settings)
    req = networks.NetworkRequest(name=f"n{cidr[:-3]}", cidr=cidr, tenant_id=tenant_id, **kw)
    return networks.create_network(ctx, SYSTEM, req).id  # type: ignore[arg-type]


def _create(rt: Runtime, tenant_id: uuid.UUID, net: uuid.UUID, name: str, count: int) -> list[Vm]:
    req = vms.VmRequest(
        name=name, flavor="s1.small", count=count, tenant_id=tenant_id, networks=(str(net),)
    )
    return vms.create_vms(rt, SYSTEM, req).vms


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*a: object) -> None:
        seen.append(str(a[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_statements_per_request_do_not_grow_with_its_count(rt: Runtime) -> None:
    tenant = _tenant(rt, "bulk")
    net = _network(rt, tenant.id, "10.8.0.0/20")
    _create(rt, tenant.id, net, "warm", 2)  # the tenant's default group, statement caches
    with _statements(rt.db) as small:
        _create(rt, tenant.id, net, "few", 2)
    with _statements(rt.db) as large:
        _create(rt, tenant.id, net, "many", 60)
    # Per VM, the old path issued ~38 statements; a batch now costs what a pair costs,
    # apart from a few per host it lands on (host claims, host port maps and policy).
    with rt.db.read_session() as s:
        hosts = s.scalar(
            select(func.count(func.distinct(Vm.host_id))).where(Vm.name.like("many-%"))
        )
    assert hosts is not None
    assert len(large) <= len(small) + 6 * hosts, (len(small), len(large), hosts)
    assert len(large) < 60 * 5  # one by one, it was ~38 per VM


def test_a_batch_has_unique_lowest_addresses_macs_and_balanced_books(rt: Runtime) -> None:
    tenant = _tenant(rt, "books")
    net = _network(rt, tenant.id, "10.9.0.0/24")
    made = _create(rt, tenant.id, net, "web", 40)
    assert len(made) == 40 and {v.state for v in made} == {"active"}
    ids = [v.id for v in made]
    with rt.db.read_session() as s:
        ports = list(s.scalars(select(Port).where(Port.vm_id.in_(ids))))
        assert len(ports) == 40 and len({p.mac for p in ports}) == 40
        assert all(p.host_id is not None for p in ports)
        assert {p.host_id for p in ports} == {v.host_id for v in made}
        addresses = sorted(
            unpack(a)
            for a in s.scalars(
                select(IpAllocation.address).where(IpAllocation.port_id.in_([p.id for p in ports]))
            )
        )
        assert len(set(addresses)) == 40
        # The lowest free ones, in one run (the gateway and the network address are taken).
        assert addresses == list(range(addresses[0], addresses[0] + 40))
        assert s.scalar(select(func.count()).select_from(PortSecurityGroup)) == 40
        quota = s.get(Quota, tenant.id)
        assert quota is not None and (quota.used_vms, quota.used_ips) == (40, 40)
    for vm in made:
        assert vm.host_id is not None
        with rt.db.read_session() as s:
            host = s.get(Host, vm.host_id)
            assert host is not None
        status = rt.driver.status(host.name, vm.id)
        assert status is not None
    assert_snapshot_matches_store(rt)


def test_a_batch_larger_than_its_subnet_grows_the_network(rt: Runtime) -> None:
    tenant = _tenant(rt, "grow")
    net = _network(rt, tenant.id, "10.10.0.0/28")  # 13 usable addresses
    made = _create(rt, tenant.id, net, "big", 30)
    with rt.db.read_session() as s:
        addresses = list(
            s.scalars(
                select(IpAllocation.address).where(
                    IpAllocation.port_id.in_(
                        select(Port.id).where(Port.vm_id.in_([v.id for v in made]))
                    )
                )
            )
        )
    assert len(addresses) == 30 and len(set(addresses)) == 30
    assert_snapshot_matches_store(rt)


def test_snapshot_switch_tables_follow_creates_and_deletes(rt: Runtime) -> None:
    tenant = _tenant(rt, "churn")
    net = _network(rt, tenant.id, "10.11.0.0/22")
    made = _create(rt, tenant.id, net, "c", 25)
    assert_snapshot_matches_store(rt)
    for vm in made:
        vms.delete_vm(rt, SYSTEM, vm.id)
    assert_snapshot_matches_store(rt)
    with rt.db.read_session() as s:
        assert s.scalar(select(func.sum(Switch.used_mac))) == 0


def test_a_rolled_back_batch_gives_its_switch_tables_back(rt: Runtime) -> None:
    tenant = _tenant(rt, "rollback")
    net = _network(rt, tenant.id, "10.12.0.0/24")
    _create(rt, tenant.id, net, "keep", 3)
    assert isinstance(rt.driver, FakeComputeDriver)
    rt.driver.fail_on["create"] = "disk image missing"
    with pytest.raises(DriverError):
        _create(rt, tenant.id, net, "lost", 10)
    rt.driver.fail_on.clear()
    assert_snapshot_matches_store(rt)


def test_every_vm_of_a_batch_boots_with_its_ipam_addresses(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hypervisor gets each NIC's addresses: a guest without DHCP configures from them."""
    booted: dict[uuid.UUID, tuple[str, ...]] = {}
    create = rt.driver.create

    def recording(spec: InstanceSpec) -> None:
        booted[spec.vm_id] = tuple(ip for nic in spec.nics for ip in nic.ips)
        create(spec)

    monkeypatch.setattr(rt.driver, "create", recording)
    tenant = _tenant(rt, "nics")
    made = _create(rt, tenant.id, _network(rt, tenant.id, "10.44.0.0/24"), "n", 3)
    with rt.db.read_session() as s:
        for vm in made:
            addresses = s.scalars(
                select(IpAllocation.address).join(Port).where(Port.vm_id == vm.id)
            )
            expected = tuple(str(ipaddress.ip_address(unpack(a))) for a in addresses)
            assert booted[vm.id] == expected and expected


def test_a_mac_collision_redraws_only_the_colliding_macs_and_keeps_one_insert(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """24 random bits per MAC collide routinely at scale; a batch must not go one by one."""
    from fuyun.services import portbatch

    tenant = _tenant(rt, "macs")
    net = _network(rt, tenant.id, "10.10.0.0/24")
    (first,) = _create(rt, tenant.id, net, "old", 1)
    with rt.db.read_session() as s:
        stored = s.scalar(select(Port.mac).where(Port.vm_id == first.id))
    assert stored is not None
    real = portbatch.random_mac
    # The batch's first draw repeats a stored MAC, the next two repeat each other.
    queue = [stored, "52:54:00:aa:bb:01", "52:54:00:aa:bb:01"]
    monkeypatch.setattr(portbatch, "random_mac", lambda oui: queue.pop(0) if queue else real(oui))
    with _statements(rt.db) as seen:
        made = _create(rt, tenant.id, net, "new", 12)
    assert len(made) == 12 and {v.state for v in made} == {"active"}
    with rt.db.read_session() as s:
        macs = list(s.scalars(select(Port.mac).where(Port.vm_id.in_([v.id for v in made]))))
    assert len(macs) == 12 and len(set(macs)) == 12 and stored not in macs
    port_inserts = [q for q in seen if q.lstrip().upper().startswith("INSERT INTO PORTS")]
    assert len(port_inserts) == 2, port_inserts  # the failed batch and the retried batch


def test_a_batch_insert_failing_for_another_reason_is_not_retried_as_a_mac(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from fuyun.services import portbatch

    tenant = _tenant(rt, "other")
    net = _network(rt, tenant.id, "10.11.0.0/24")
    calls = [0]
    real_insert = portbatch.insert

    def failing_insert(table: object) -> object:
        if table in (Port, Port.__table__):
            calls[0] += 1
            raise IntegrityError("INSERT INTO ports", {}, Exception("NOT NULL constraint"))
        return real_insert(table)

    monkeypatch.setattr(portbatch, "insert", failing_insert)
    with pytest.raises(IntegrityError, match="NOT NULL"):
        _create(rt, tenant.id, net, "bad", 3)
    assert calls[0] == 1
    with rt.db.read_session() as s:
        assert (
            s.scalar(select(func.count()).select_from(Port).where(Port.tenant_id == tenant.id)) == 0
        )
