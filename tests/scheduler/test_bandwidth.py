"""The NIC-bandwidth filter reads what admission writes: host NICs and the ToR uplink."""

from __future__ import annotations

import uuid

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, Demand, HostSlot, SwitchSlot
from fuyun.scheduler.plugins.bandwidth import BandwidthFilter


def _cluster(host_used: int, tor_used: int) -> tuple[Cluster, HostSlot]:
    c = Cluster()
    tor = SwitchSlot(uuid.uuid4(), "t1", uuid.uuid4(), "tor", 10, 10, 10)
    tor.uplink_mbps, tor.used_bandwidth_mbps = 1000, tor_used
    c.switches[tor.id] = tor
    host = HostSlot(
        uuid.uuid4(),
        "h1",
        uuid.uuid4(),
        tor.module,
        tor.id,
        "active",
        "kvm",
        12,
        1024,
        100,
        2000,
        10,
        used_bandwidth_mbps=host_used,
    )
    c.add_host(host)
    return c, host


def test_host_and_tor_guarantees_are_both_checked() -> None:
    f = BandwidthFilter()
    c, h = _cluster(1500, 800)
    assert f.reject(c, Request(Demand(1, 1, 1, 100, 200)), h) is None
    assert "500 left on its NICs" in (f.reject(c, Request(Demand(1, 1, 1, 400, 200)), h) or "")
    reason = f.reject(c, Request(Demand(1, 1, 1, 0, 300)), h)
    assert reason is not None and "ToR t1's uplink, 200 left" in reason
    assert f.reject(c, Request(Demand(1, 1, 1, 400, 0)), h) is None, "flavor-only: host only"


def test_claim_and_release_move_host_and_tor_together() -> None:
    c, h = _cluster(0, 0)
    d = Demand(2, 512, 10, 100, 300)
    c.claim(h.id, d, vms=2)
    assert (h.used_bandwidth_mbps, c.switches[h.tor].used_bandwidth_mbps) == (800, 600)
    assert h.used_vcpus == 4
    c.release(h.id, d)
    assert (h.used_bandwidth_mbps, c.switches[h.tor].used_bandwidth_mbps) == (400, 300)
    assert (h.used_vcpus, h.vm_count) == (2, 1)
