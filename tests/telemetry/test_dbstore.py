"""The database flow store on SQLite and PostgreSQL: upserts add up, queries narrow, expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fuyun.store.engine import Database
from fuyun.telemetry.dbstore import DatabaseFlowStore
from fuyun.telemetry.flowstore import TrafficQuery
from fuyun.telemetry.rollup import InterfaceRow, TrafficRow

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
A, B = uuid.uuid4(), uuid.uuid4()
VM_A1, VM_A2, VM_B1, NET = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _row(at: datetime, tenant: uuid.UUID, vm: uuid.UUID, tx: int, rx: int = 0) -> TrafficRow:
    return TrafficRow(10, at, tenant, vm, NET, tx, rx, tx // 100, rx // 100, 1)


def test_buckets_sum_across_flushes_and_roll_up(any_db: Database) -> None:
    store = DatabaseFlowStore(any_db)
    t = [T0 + timedelta(seconds=10 * i) for i in range(7)]  # 10:00:00 .. 10:01:00
    store.write([_row(t[0], A, VM_A1, 1000), _row(t[1], A, VM_A1, 500, 70)], [])
    store.write(
        [_row(t[0], A, VM_A1, 1), _row(t[6], A, VM_A2, 4000), _row(t[2], B, VM_B1, 9000)], []
    )
    window = (T0, T0 + timedelta(hours=1))
    tens = store.series(TrafficQuery(10, *window))
    assert [(r.bucket_start, r.vm_id, r.tx_bytes) for r in tens if r.vm_id == VM_A1] == [
        (t[0], VM_A1, 1001),
        (t[1], VM_A1, 500),
    ]
    minutes = store.series(TrafficQuery(60, *window, tenant_id=A))
    assert sorted((r.bucket_start, r.tx_bytes) for r in minutes) == [
        (T0, 1501),
        (T0 + timedelta(minutes=1), 4000),
    ]
    (hour,) = store.series(TrafficQuery(3600, *window, vm_id=VM_A1))
    assert (hour.tx_bytes, hour.rx_bytes, hour.samples) == (1501, 70, 3)

    top_vms = store.top(TrafficQuery(3600, *window), by="vm", limit=2)
    assert [(x.key, x.bytes) for x in top_vms] == [(VM_B1, 9000), (VM_A2, 4000)]
    top_tenants = store.top(TrafficQuery(60, *window), by="tenant", limit=10)
    assert [(x.key, x.tx_bytes) for x in top_tenants] == [(B, 9000), (A, 5501)]
    assert store.top(TrafficQuery(60, *window, tenant_id=A), by="tenant", limit=10)[0].key == A


def test_per_bucket_sums_every_vm_and_vm_ids_narrow_to_a_few(any_db: Database) -> None:
    store = DatabaseFlowStore(any_db)
    t = [T0 + timedelta(minutes=i) for i in range(3)]
    store.write(
        [
            _row(t[0], A, VM_A1, 100, 1),
            _row(t[0], A, VM_A2, 20, 2),
            _row(t[0], B, VM_B1, 3, 4),
            _row(t[2], A, VM_A1, 7, 0),
        ],
        [],
    )
    window = (T0, T0 + timedelta(hours=1))
    assert store.per_bucket(TrafficQuery(60, *window)) == [(t[0], 123, 7), (t[2], 7, 0)]
    assert store.per_bucket(TrafficQuery(60, *window, tenant_id=B)) == [(t[0], 3, 4)]
    assert (
        store.per_bucket(TrafficQuery(60, T0 + timedelta(hours=2), T0 + timedelta(hours=3))) == []
    )
    few = TrafficQuery(60, *window, vm_ids=frozenset({VM_A2, VM_B1}))
    assert sorted((r.vm_id, r.tx_bytes) for r in store.series(few)) == sorted(
        [(VM_A2, 20), (VM_B1, 3)]
    )
    assert store.per_bucket(few) == [(t[0], 23, 6)]


def test_interfaces_add_deltas_and_keep_their_owner(any_db: Database) -> None:
    store = DatabaseFlowStore(any_db)

    def iface(vm: uuid.UUID | None, octets: int) -> InterfaceRow:
        return InterfaceRow(
            10, T0, "192.0.2.1", 7, "h1", vm, A if vm else None, 10**9, 4.0, octets, 0, 0, 1, 2, 0
        )

    store.write([], [iface(VM_A1, 100)])
    store.write([], [iface(None, 50)])  # a flush that did not know the port's owner
    (row,) = store.interfaces(TrafficQuery(10, T0, T0 + timedelta(minutes=1)))
    assert (row.in_octets, row.seconds, row.out_errors, row.in_discards) == (150, 8.0, 2, 4)
    assert row.vm_id == VM_A1 and row.tenant_id == A
    assert store.interfaces(TrafficQuery(10, T0, T0 + timedelta(minutes=1), tenant_id=B)) == []


def test_expire_drops_each_resolution_after_its_retention(any_db: Database) -> None:
    store = DatabaseFlowStore(any_db, retention={10: 600, 60: 7200, 3600: 86400})
    store.write([_row(T0, A, VM_A1, 10)], [])
    assert store.expire(T0 + timedelta(minutes=30)) == 1
    assert store.expire(T0 + timedelta(hours=3)) == 1
    left = store.series(TrafficQuery(3600, T0, T0 + timedelta(hours=1)))
    assert [r.tx_bytes for r in left] == [10]
