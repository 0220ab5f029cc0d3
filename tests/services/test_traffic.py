"""Traffic reports: the rate per bucket is summed in the store; a page judges only the VMs
it names, and the fabric-wide top tenants need no series."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fuyun.config import Settings
from fuyun.services import traffic
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from fuyun.store.types import utcnow
from fuyun.telemetry.dbstore import DatabaseFlowStore
from fuyun.telemetry.rollup import TrafficRow, bucket_of, to_time

TENANT, NET = uuid.uuid4(), uuid.uuid4()
VMS = [uuid.uuid4() for _ in range(5)]


def _store(db: Database) -> DatabaseFlowStore:
    store = traffic.flow_store(Settings(database_url=db.url), db)
    assert isinstance(store, DatabaseFlowStore)
    now = bucket_of(utcnow().timestamp(), 60)
    rows = [
        TrafficRow(10, to_time(now - 60 * k), TENANT, vm, NET, (n + 1) * 1000, n, 10, 1, 1)
        for n, vm in enumerate(VMS)
        for k in (1, 2, 3)
    ]
    store.write(rows, [])
    return store


def test_series_is_the_sum_of_every_vm_per_bucket(db: Database) -> None:
    store = _store(db)
    report = traffic.traffic_report(db, store, SYSTEM, bucket="1m", top=2)
    assert [e.id for e in report.top] == [VMS[4], VMS[3]]
    assert len(report.series) == 3
    assert all((p.tx_bytes, p.rx_bytes) == (15_000, 10) for p in report.series)
    bare = traffic.traffic_report(
        db, store, SYSTEM, bucket="1m", top=2, group_by="tenant", with_series=False
    )
    assert bare.series == [] and [e.id for e in bare.top] == [TENANT]


def test_quality_judges_only_the_vms_a_page_names(db: Database) -> None:
    store = _store(db)
    everyone = traffic.quality_report(db, store, SYSTEM, bucket="1m")
    assert {q.vm_id for q in everyone} == set(VMS)
    few = traffic.quality_report(db, store, SYSTEM, bucket="1m", among=frozenset(VMS[:2]))
    assert {q.vm_id for q in few} == set(VMS[:2])
    assert traffic.quality_report(db, store, SYSTEM, bucket="1m", among=frozenset()) == []
    since = utcnow() - timedelta(hours=2)
    old = traffic.quality_report(
        db, store, SYSTEM, bucket="1m", since=since, until=since + timedelta(minutes=5)
    )
    assert old == []


def test_top_tenants_rolled_up_from_vms_equal_the_store_grouped_by_tenant(db: Database) -> None:
    store = _store(db)
    other, small = uuid.uuid4(), uuid.uuid4()
    now = bucket_of(utcnow().timestamp(), 60)
    store.write(
        [
            TrafficRow(10, to_time(now - 60), other, uuid.uuid4(), NET, 9_000, 3_000, 9, 3, 1),
            TrafficRow(10, to_time(now - 60), other, uuid.uuid4(), NET, 4_000, 0, 4, 0, 1),
            TrafficRow(10, to_time(now - 120), small, uuid.uuid4(), NET, 10, 5, 1, 1, 1),
        ],
        [],
    )
    both = traffic.traffic_report(db, store, SYSTEM, bucket="1m", top=2, top_tenants=2)
    grouped = traffic.traffic_report(
        db, store, SYSTEM, bucket="1m", top=2, group_by="tenant", with_series=False
    )
    assert [e.id for e in both.top] == [VMS[4], VMS[3]]  # the VMs as without tenants
    assert both.top_tenants == grouped.top  # ids, names, bytes, packets and rates
    assert [e.id for e in both.top_tenants] == [TENANT, other]
    assert both.top_tenants[0].tx_bytes == 3 * 15_000
    alone = traffic.traffic_report(db, store, SYSTEM, bucket="1m", top=2)
    assert alone.top_tenants == []
