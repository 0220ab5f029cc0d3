"""The scheduler's in-memory snapshot against the store: every host and switch counter."""

from __future__ import annotations

from sqlalchemy import select

from fuyun.services.runtime import Runtime
from fuyun.store.models import Host, Switch


def assert_snapshot_matches_store(rt: Runtime) -> None:
    """Each switch's MAC/ARP/VLAN use and each host's VMs and vCPUs agree with the store."""
    cluster = rt.placement.scheduler().cluster
    with rt.db.read_session() as s:
        rows = s.execute(
            select(Switch.id, Switch.name, Switch.used_mac, Switch.used_arp, Switch.used_vlans)
        )
        for sw_id, name, mac, arp, vlans in rows:
            mem = cluster.switches[sw_id]
            assert (mem.used_mac, mem.used_arp, mem.used_vlans) == (mac, arp, vlans), name
        for h in s.scalars(select(Host)):
            slot = cluster.hosts[h.id]
            assert (slot.vm_count, slot.used_vcpus) == (h.vm_count, h.used_vcpus), h.name
