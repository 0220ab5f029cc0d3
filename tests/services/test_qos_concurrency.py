"""No over-admission under concurrency, on SQLite and PostgreSQL.

Many threads attach guarantees at once to VMs that share one host (or one ToR)
whose uplink can take only some of them. Whatever the interleaving, exactly as
many succeed as fit, the rest are refused naming the link, and the counters equal
the sum of what was admitted.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from fuyun.domain.errors import CapacityExhausted
from fuyun.services import qos
from fuyun.services.principal import SYSTEM
from fuyun.services.qos import PolicySpec
from fuyun.store.engine import Database
from fuyun.store.models import QosClaim, Vm
from tests.services.qos_world import H1, H2, TOR, World, make_world

CLIENTS = 8
PER_HOST = 5  # the small fabric's hosts are 1p5v at most
GUARANTEE = 300
FITS = 2


def _race(w: World, vms: list[Vm]) -> list[str]:
    qos.create_policy(
        w.db, SYSTEM, PolicySpec("gold", "port", GUARANTEE, 1000), tenant_id=w.tenant_id
    )

    def attach(vm: Vm) -> str:
        try:
            qos.set_vm_policy(w.rt, SYSTEM, vm.id, "gold")
        except CapacityExhausted as exc:
            return exc.message
        return "ok"

    with ThreadPoolExecutor(max_workers=len(vms)) as pool:
        return list(pool.map(attach, vms))


def _admitted(w: World) -> int:
    with w.db.read_session() as s:
        return int(s.scalar(select(func.coalesce(func.sum(QosClaim.guaranteed_mbps), 0))) or 0)


@pytest.mark.slow
def test_a_host_uplink_is_never_over_admitted(any_db: Database) -> None:
    w = make_world(any_db)
    vms = [w.vm(f"v{i}", H1) for i in range(PER_HOST)]
    flavors = w.host(H1).used_bandwidth_mbps
    w.set_host_nic(H1, flavors + FITS * GUARANTEE + GUARANTEE // 2)
    results = _race(w, vms)
    assert results.count("ok") == FITS, results
    assert all(f"host uplink of {H1}" in r for r in results if r != "ok")
    assert w.host(H1).used_bandwidth_mbps == flavors + FITS * GUARANTEE
    assert _admitted(w) == FITS * GUARANTEE == w.tor().used_bandwidth_mbps


@pytest.mark.slow
def test_a_tor_uplink_is_never_over_admitted(any_db: Database) -> None:
    w = make_world(any_db)
    vms = [w.vm(f"v{i}", H1 if i % 2 else H2) for i in range(CLIENTS)]
    w.set_tor_uplink(FITS * GUARANTEE + GUARANTEE // 2)
    results = _race(w, vms)
    assert results.count("ok") == FITS, results
    assert all(f"ToR uplink of {TOR}" in r for r in results if r != "ok")
    assert w.tor().used_bandwidth_mbps == FITS * GUARANTEE == _admitted(w)
