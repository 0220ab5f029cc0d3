"""Property tests of the IP allocator against a real database.

A hypothesis state machine allocates (next-free and named), releases and lets
time pass on one subnet, IPv4 and IPv6, and checks after every step against a
plain model: no address twice, nothing outside the usable range, quarantine
honoured, next-free really the lowest free address, and free + allocated +
quarantined = capacity.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from fuyun.config import Settings
from fuyun.domain.errors import Conflict
from fuyun.ipam.addresses import parse_network, unpack
from fuyun.ipam.subnets import layout
from fuyun.services import addressing, networks, tenants
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from fuyun.store.models import IpAllocation, Module, Site, Subnet, Switch
from fuyun.store.types import utcnow

HOLD_S = 60
_names = itertools.count()


def _fabric(db: Database) -> None:
    with db.write_session() as s:
        site = Site(name="sz1")
        s.add(site)
        s.flush()
        module = Module(name="sz1-m01", site_id=site.id, fabric_kind="routed-clos")
        s.add(module)
        s.flush()
        s.add(
            Switch(
                name="sz1-m01-t01",
                site_id=site.id,
                module_id=module.id,
                role="tor",
                platform="nxos",
                mac_capacity=10,
                arp_capacity=10,
                vlan_capacity=10,
                acl_capacity=10,
            )
        )


def _subnet(db: Database, cidr: str, reserve_first: int) -> Subnet:
    tenant = tenants.create_tenant(db, SYSTEM, name=f"t{next(_names)}")
    ctx = networks.Networking(db=db, settings=Settings(database_url=db.url))
    net = networks.create_network(
        ctx,
        SYSTEM,
        networks.NetworkRequest(
            name="n",
            cidr=cidr,
            reserve_first=reserve_first,
            tenant_id=tenant.id,
            growth=networks.Growth.REFUSE,
        ),
    )
    with db.read_session() as s:
        sub = s.scalar(select(Subnet).where(Subnet.network_id == net.id))
        assert sub is not None
        return sub


class Allocator(RuleBasedStateMachine):
    db: Database
    cidr: str
    reserve_first: int

    def __init__(self) -> None:
        super().__init__()
        self.subnet = _subnet(self.db, self.cidr, self.reserve_first)
        net = parse_network(self.cidr)
        lay = layout(net, reserve_first=self.reserve_first)
        assert lay.usable is not None
        self.usable = range(lay.usable.first, lay.usable.last + 1)
        self.gateway = lay.gateway
        self.allocated: set[int] = set()
        self.quarantined: dict[int, datetime] = {}
        self.now = utcnow()

    def _free(self) -> list[int]:
        return [
            a
            for a in self.usable
            if a != self.gateway and a not in self.allocated and a not in self.quarantined
        ]

    @rule()
    def allocate_next(self) -> None:
        free = self._free()
        with self.db.write_session() as s:
            row = addressing.allocate_next(s, self.subnet, None, now=self.now, hold_s=HOLD_S)
            got = None if row is None else unpack(row.address)
        if free:
            assert got == min(free), "next-free must be the lowest free address"
        else:
            expired = [
                a for a, t in self.quarantined.items() if t + timedelta(seconds=HOLD_S) <= self.now
            ]
            if expired:
                assert got in expired
                del self.quarantined[got]
            else:
                assert got is None
                return
        assert got is not None and got not in self.allocated
        self.allocated.add(got)

    @rule(offset=st.integers(min_value=0, max_value=2**16))
    def allocate_exact(self, offset: int) -> None:
        address = self.usable.start + offset % len(self.usable)
        try:
            with self.db.write_session() as s:
                addressing.allocate_exact(
                    s, self.subnet, address, None, now=self.now, hold_s=HOLD_S
                )
        except Conflict as exc:
            held = self.quarantined.get(address)
            assert (
                address in self.allocated
                or address == self.gateway
                or (held is not None and held + timedelta(seconds=HOLD_S) > self.now)
            ), exc
            return
        assert address not in self.allocated and address != self.gateway
        held = self.quarantined.pop(address, None)
        assert held is None or held + timedelta(seconds=HOLD_S) <= self.now
        self.allocated.add(address)

    @precondition(lambda self: bool(self.allocated))
    @rule(pick=st.integers(min_value=0, max_value=10**6))
    def release(self, pick: int) -> None:
        address = sorted(self.allocated)[pick % len(self.allocated)]
        with self.db.write_session() as s:
            row = s.scalar(
                select(IpAllocation).where(
                    IpAllocation.subnet_id == self.subnet.id,
                    IpAllocation.address == address.to_bytes(16, "big"),
                )
            )
            assert row is not None
            addressing.release(s, row, now=self.now, hold_s=HOLD_S)
        self.allocated.discard(address)
        self.quarantined[address] = self.now

    @rule(seconds=st.sampled_from([1, 30, 59, 60, 61, 600]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @invariant()
    def store_matches_model(self) -> None:
        with self.db.read_session() as s:
            rows = s.execute(
                select(IpAllocation.address, IpAllocation.state).where(
                    IpAllocation.subnet_id == self.subnet.id
                )
            ).all()
            free = addressing.free_count(s, self.subnet.id)
        allocated = {unpack(a) for a, state in rows if state == "allocated"}
        quarantined = {unpack(a) for a, state in rows if state == "quarantined"}
        assert len(rows) == len(allocated) + len(quarantined), "an address appears twice"
        assert allocated == self.allocated
        assert quarantined == set(self.quarantined)
        assert all(a in self.usable and a != self.gateway for a in allocated | quarantined)
        assert free + len(allocated) + len(quarantined) == self.subnet.capacity


@pytest.mark.parametrize(
    "cidr,reserve_first",
    [
        ("10.0.0.0/28", 0),
        ("10.0.0.0/27", 3),
        ("192.168.7.0/30", 0),
        ("2001:db8::/124", 0),
        ("2001:db8:1::/122", 2),
    ],
)
def test_allocator_against_a_model(db: Database, cidr: str, reserve_first: int) -> None:
    _fabric(db)
    machine = type(
        "Machine", (Allocator,), {"db": db, "cidr": cidr, "reserve_first": reserve_first}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_next_free_on_a_huge_ipv6_subnet(db: Database) -> None:
    """A /64 is 2**64 addresses: the allocator never walks it."""
    _fabric(db)
    sub = _subnet(db, "2001:db8:2::/64", 0)
    now = utcnow()
    with db.write_session() as s:
        got = [
            unpack(addressing.allocate_next(s, sub, None, now=now, hold_s=0).address)  # type: ignore[union-attr]
            for _ in range(3)
        ]
    base = int(parse_network("2001:db8:2::/64").network_address)
    assert got == [base + 2, base + 3, base + 4]
    assert sub.capacity == 2**62  # capped in the column; the math is exact
