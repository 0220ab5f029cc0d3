"""Load the live port map from the store, and keep a cached index that follows changes.

The truth is the store: every port that has a VM, with the VM's current host,
the VLAN of the port's segment and the port's addresses. :class:`PortMapCache`
rebuilds its :class:`~fuyun.telemetry.portmap.PortIndex` when a cheap signature
of those tables changes (row counts and the newest ``updated_at`` of ports and
VMs — a migration rewrites the VM's host and so its ``updated_at``), checked at
most every ``refresh_s`` seconds. Between checks the collector reads a plain
attribute: no lock, no query on the hot path.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from fuyun.ipam.addresses import to_address, unpack
from fuyun.store.engine import Database
from fuyun.store.models import Host, IpAllocation, Network, Port, Segment, Tenant, Vm
from fuyun.telemetry.portmap import Binding, PortIndex


def load_bindings(db: Database) -> tuple[list[Binding], dict[bytes, str]]:
    """Every VM port with its owner and current host; and exporter address -> host name."""
    with db.read_session() as s:
        ips: dict[uuid.UUID, list[str]] = defaultdict(list)
        for port_id, address, family in s.execute(
            select(IpAllocation.port_id, IpAllocation.address, IpAllocation.family).where(
                IpAllocation.port_id.is_not(None), IpAllocation.state == "allocated"
            )
        ):
            ips[port_id].append(str(to_address(unpack(address), family)))
        rows = s.execute(
            select(
                Port.id,
                Vm.id,
                Vm.name,
                Tenant.id,
                Tenant.name,
                Network.id,
                Network.name,
                Segment.vlan,
                Port.mac,
                Host.name,
            )
            .join(Vm, Vm.id == Port.vm_id)
            .join(Tenant, Tenant.id == Port.tenant_id)
            .join(Network, Network.id == Port.network_id)
            .join(Segment, Segment.id == Port.segment_id)
            .outerjoin(Host, Host.id == Vm.host_id)
        )
        bindings = [
            Binding(pid, vid, vname, tid, tname, nid, nname, vlan, mac, tuple(ips[pid]), host)
            for pid, vid, vname, tid, tname, nid, nname, vlan, mac, host in rows
        ]
        agents: dict[bytes, str] = {}
        for name, mgmt in s.execute(
            select(Host.name, Host.mgmt_address).where(Host.mgmt_address.is_not(None))
        ):
            try:
                agents[ipaddress.ip_address(mgmt.split("/")[0]).packed] = name
            except ValueError:
                continue
    return bindings, agents


def signature(db: Database) -> tuple[Any, ...]:
    with db.read_session() as s:
        ports = s.execute(select(func.count(Port.id), func.max(Port.updated_at))).one()
        vms = s.execute(select(func.count(Vm.id), func.max(Vm.updated_at))).one()
        ips = s.execute(select(func.count(IpAllocation.id))).scalar_one()
        hosts = s.execute(select(func.count(Host.id), func.max(Host.updated_at))).one()
    return (*ports, *vms, ips, *hosts)


class PortMapCache:
    """The current index, refreshed when the store's port map changes."""

    def __init__(self, db: Database, refresh_s: float = 2.0):
        self.db, self.refresh_s = db, refresh_s
        self._sig: tuple[Any, ...] | None = None
        self._checked = 0.0
        self.index = PortIndex([])
        self.rebuilds = 0

    def current(self, now: float | None = None) -> PortIndex:
        """The index, after a refresh if ``refresh_s`` passed and the store changed."""
        now = time.monotonic() if now is None else now
        if now - self._checked >= self.refresh_s or self._sig is None:
            self.refresh()
            self._checked = now
        return self.index

    def refresh(self) -> bool:
        sig = signature(self.db)
        if sig == self._sig:
            return False
        bindings, agents = load_bindings(self.db)
        self.index = PortIndex(bindings, agents)
        self._sig = sig
        self.rebuilds += 1
        return True
