"""Placement: the scheduler's snapshot of the fabric, and claims that make a choice real.

The snapshot is built once per process from the store (columns only, no ORM
objects: 100,000 hosts load in seconds) and kept current by every placement and
release this process makes. Other processes may change the store behind it; a
claim is a conditional ``UPDATE``, so a stale snapshot costs a retry, never an
overcommit: the losing host is re-read and the decision made again.

The scheduler's state is guarded by a lock held only for in-memory work, never
across a database call, so a thread waiting on a row lock cannot stall the others.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.enums import FabricKind, SwitchRole
from fuyun.domain.errors import CapacityExhausted
from fuyun.ipam.l2 import SegmentView, port_joins
from fuyun.scheduler.framework import Decision, Request, Scheduler
from fuyun.scheduler.model import (
    Cluster,
    Demand,
    GroupNeed,
    HostSlot,
    ModuleInfo,
    NetworkNeed,
    SwitchSlot,
)
from fuyun.scheduler.plugins import default_filters, default_weighers
from fuyun.scheduler.plugins.affinity import unit_of
from fuyun.services import capacity
from fuyun.services.metrics import conflict_retried
from fuyun.store.engine import Database
from fuyun.store.models import (
    Host,
    Module,
    Network,
    Segment,
    ServerGroup,
    SpanMember,
    Switch,
    Vm,
)

CLAIM_RETRIES = 8
#: A batch re-ranks its candidates after this many VMs placed on one ranking.
RERANK_EVERY = 16
_HOST_COLUMNS = (
    Host.id,
    Host.name,
    Host.site_id,
    Host.module_id,
    Host.tor_id,
    Host.state,
    Host.hypervisor,
    Host.vcpus,
    Host.ram_mb,
    Host.disk_gb,
    Host.nic_mbps,
    Host.max_vms,
    Host.used_vcpus,
    Host.used_ram_mb,
    Host.used_disk_gb,
    Host.used_bandwidth_mbps,
    Host.vm_count,
)


#: Switch-table use a VM's ports take (or give back): (switch, MAC, ARP, VLANs) each.
SwitchUse = tuple[tuple[uuid.UUID, int, int, int], ...]


@dataclass(frozen=True)
class Placed:
    host: HostSlot
    decision: Decision
    # What the VM's ports add to the snapshot's switch tables, to give back on forget.
    switch_use: SwitchUse = ()


def _slot(row: object) -> HostSlot:
    return HostSlot(*row)  # type: ignore[misc]


class Placement:
    def __init__(self, db: Database, settings: Settings, *, strategy: str = "pack"):
        self.db = db
        self.settings = settings
        self.strategy = strategy
        self._lock = threading.RLock()
        self._scheduler: Scheduler | None = None

    # -- the snapshot ---------------------------------------------------------------

    def scheduler(self) -> Scheduler:
        with self._lock:
            if self._scheduler is None:
                self._scheduler = Scheduler(
                    self._load(),
                    default_filters(),
                    default_weighers(),
                    subset_size=self.settings.placement_subset_size,
                )
            return self._scheduler

    def invalidate(self) -> None:
        """Forget the snapshot (the fabric changed); the next decision reloads it."""
        with self._lock:
            self._scheduler = None

    def _load(self) -> Cluster:
        cluster = Cluster(
            cpu_ratio=self.settings.cpu_allocation_ratio,
            ram_ratio=self.settings.ram_allocation_ratio,
        )
        with self.db.read_session() as s:
            aggs: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
            for row in s.execute(
                select(
                    Switch.id,
                    Switch.name,
                    Switch.module_id,
                    Switch.role,
                    Switch.mac_capacity,
                    Switch.arp_capacity,
                    Switch.vlan_capacity,
                    Switch.used_mac,
                    Switch.used_arp,
                    Switch.used_vlans,
                    Switch.uplink_mbps,
                    Switch.used_bandwidth_mbps,
                ).order_by(Switch.name)
            ):
                sw = SwitchSlot(*row)
                cluster.switches[sw.id] = sw
                if sw.role == SwitchRole.AGGREGATION.value:
                    aggs[sw.module].append(sw.id)
            for mid, name, site, kind in s.execute(
                select(Module.id, Module.name, Module.site_id, Module.fabric_kind)
            ):
                cluster.modules[mid] = ModuleInfo(
                    mid, name, site, kind == FabricKind.SWITCHED_CLOS.value, tuple(aggs[mid])
                )
            for row in s.execute(select(*_HOST_COLUMNS).order_by(Host.name)):
                cluster.add_host(_slot(row))
        return cluster

    def _refresh_host(self, host_id: uuid.UUID) -> None:
        with self.db.read_session() as s:
            row = s.execute(select(*_HOST_COLUMNS).where(Host.id == host_id)).first()
        if row is not None:
            with self._lock:
                self.scheduler().cluster.sync_host(_slot(row))

    def refresh_hosts(self, host_ids: set[uuid.UUID]) -> None:
        """Re-read the guaranteed bandwidth of hosts and their ToRs after a committed change."""
        if not host_ids or self._scheduler is None:
            return
        with self.db.read_session() as s:
            hosts = s.execute(select(*_HOST_COLUMNS).where(Host.id.in_(list(host_ids)))).all()
            tors = s.execute(
                select(Switch.id, Switch.used_bandwidth_mbps).where(
                    Switch.id.in_({row.tor_id for row in hosts})
                )
            ).all()
        with self._lock:
            if self._scheduler is None:
                return
            cluster = self._scheduler.cluster
            for row in hosts:
                cluster.sync_host(_slot(row))
            for tor_id, used in tors:
                if tor_id in cluster.switches:
                    cluster.switches[tor_id].used_bandwidth_mbps = used

    # -- what a request needs ---------------------------------------------------------

    def network_needs(self, s: Session, networks: list[Network], ips: int = 1) -> list[NetworkNeed]:
        needs = []
        for net in networks:
            module = s.get(Module, net.module_id)
            assert module is not None
            segment_id = s.scalar(
                select(Segment.id)
                .where(Segment.network_id == net.id)
                .order_by(Segment.index.desc())
                .limit(1)
            )
            span = dict(
                s.execute(
                    select(SpanMember.switch_id, SpanMember.ports).where(
                        SpanMember.segment_id == segment_id
                    )
                ).all()
            )
            needs.append(
                NetworkNeed(
                    net.id,
                    module.id,
                    module.fabric_kind == FabricKind.SWITCHED_CLOS.value,
                    span,
                    ips,
                )
            )
        return needs

    def group_need(self, s: Session, group: ServerGroup) -> GroupNeed:
        cluster = self.scheduler().cluster
        members: dict[uuid.UUID, int] = defaultdict(int)
        for (host_id,) in s.execute(
            select(Vm.host_id).where(
                Vm.group_id == group.id, Vm.state != "deleted", Vm.host_id.is_not(None)
            )
        ):
            host = cluster.hosts.get(host_id)
            if host is not None:
                members[unit_of(host, group.level)] += 1  # type: ignore[index]
        return GroupNeed(group.id, group.policy, group.level, dict(members))

    # -- deciding and claiming --------------------------------------------------------

    def place(
        self, s: Session, req: Request, count: int, *, pinned_name: str | None = None
    ) -> list[Placed]:
        """Choose and claim a host for each of ``count`` VMs, in the caller's transaction.

        The whole batch is decided in memory first (each VM sees the spans, switch
        tables and groups the ones before it moved), then claimed with one
        conditional ``UPDATE`` per chosen host for all its VMs. A host whose claim
        fails (another placer got there first) is re-read and its VMs decided again.
        If the transaction does not commit, the caller must :meth:`forget` the result.
        """
        placed: list[Placed | None] = [None] * count
        todo = list(range(count))
        try:
            for _ in range(CLAIM_RETRIES):
                earlier: Decision | None = None
                for i in todo:
                    one = self._decide(
                        replace(req, batch=count - i), i, count, pinned_name, earlier
                    )
                    req, use = self._after(req, one.host)
                    placed[i] = replace(one, switch_use=use)
                    earlier = one.decision if one.decision.ranked else None
                    if i % RERANK_EVERY == RERANK_EVERY - 1:
                        earlier = None
                lost = self._claim(s, req.demand, [placed[i] for i in todo])  # type: ignore[misc]
                if not lost:
                    return placed  # type: ignore[return-value]
                todo = [i for i in todo if placed[i].host.id in lost]  # type: ignore[union-attr]
                self.forget([placed[i] for i in todo], req.demand)  # type: ignore[misc]
                for i in todo:
                    placed[i] = None
                for host_id in lost:
                    self._refresh_host(host_id)
        except BaseException:
            self.forget([p for p in placed if p is not None], req.demand)
            raise
        self.forget([p for p in placed if p is not None], req.demand)
        raise CapacityExhausted("lost every claim race; retry", field="host", code="contention")

    def _decide(
        self,
        req: Request,
        i: int,
        count: int,
        pinned_name: str | None,
        earlier: Decision | None = None,
    ) -> Placed:
        """One VM's host, claimed in memory only.

        With ``pack``, the next VM of a batch first walks the previous decision's
        ranking (every filter re-checked): the host just filled only gets better, so
        a full decision is needed when the ranking runs dry, and every
        ``RERANK_EVERY`` VMs so that spans and scores that moved are seen.
        """
        with self._lock:
            sched = self.scheduler()
            decision = None
            if earlier is not None and req.strategy == "pack" and not req.groups:
                decision = sched.next_of(req, earlier)
            if decision is None:
                decision = sched.select(req)
            host = decision.host
            if host is None:
                what = f"host '{pinned_name}' cannot" if pinned_name else "no host can"
                raise CapacityExhausted(
                    f"{what} take VM {i + 1} of {count}: {decision.reasons()}",
                    field="host" if pinned_name else "flavor",
                    code="unschedulable",
                )
            sched.cluster.claim(host.id, req.demand)
        return Placed(host, decision)

    def _claim(self, s: Session, demand: Demand, batch: list[Placed]) -> set[uuid.UUID]:
        """Claim the batch in the store, one ``UPDATE`` run per host; the hosts that refused."""
        per_host: dict[uuid.UUID, int] = defaultdict(int)
        for p in batch:
            per_host[p.host.id] += 1
        lost = capacity.claim_hosts(
            s,
            [  # one lock order for every placer
                (
                    host_id,
                    capacity.Demand(
                        demand.vcpus * k,
                        demand.ram_mb * k,
                        demand.disk_gb * k,
                        demand.bandwidth_mbps * k,
                        vms=k,
                    ),
                )
                for host_id, k in sorted(per_host.items())
            ],
            cpu_ratio=self.settings.cpu_allocation_ratio,
            ram_ratio=self.settings.ram_allocation_ratio,
        )
        for _ in lost:
            conflict_retried("host")
        return lost

    def _after(self, req: Request, host: HostSlot) -> tuple[Request, SwitchUse]:
        """The same request for the next VM of a batch: spans and groups have moved.

        The switch tables the VM's ports take are added to the snapshot here and
        remembered on the request's placement, so :meth:`forget` and
        :meth:`released` can give them back.
        """
        cluster = self.scheduler().cluster
        needs, use = [], []
        for need in req.networks:
            module = cluster.modules[need.module]
            view = SegmentView(0, need.switched, module.aggregation, dict(need.span_ports))
            change = port_joins(view, host.tor, need.ips)
            with self._lock:
                for sw_id, delta in change.deltas.items():
                    if sw_id in cluster.switches:
                        cluster.add_switch_use(sw_id, delta.mac, delta.arp, delta.vlans)
            span = dict(need.span_ports)
            span[host.tor] = span.get(host.tor, 0) + 1
            needs.append(replace(need, span_ports=span))
            use += [(sw, d.mac, d.arp, d.vlans) for sw, d in change.deltas.items()]
        groups = []
        for g in req.groups:
            members = dict(g.members_at)
            unit = unit_of(host, g.level)
            members[unit] = members.get(unit, 0) + 1  # type: ignore[call-overload]
            groups.append(replace(g, members_at=members))
        return replace(req, networks=tuple(needs), groups=tuple(groups)), tuple(use)

    def forget(self, placed: list[Placed], demand: Demand) -> None:
        """Undo in-memory claims whose transaction did not commit."""
        with self._lock:
            if self._scheduler is None:
                return
            for p in placed:
                self._scheduler.cluster.release(p.host.id, demand)
                self._give_back(p.switch_use)

    def released(self, host_id: uuid.UUID, demand: Demand, switch_use: SwitchUse = ()) -> None:
        """A release (a VM returned): give the capacity and its switch tables back in memory.

        ``switch_use`` is what the store's switch rows gave back (negative deltas, as
        ``l2fabric.unbind`` claimed them), so the snapshot's tables shrink with them.
        """
        with self._lock:
            if self._scheduler is not None and host_id in self._scheduler.cluster.hosts:
                self._scheduler.cluster.release(host_id, demand)
        self.tables_changed(switch_use)

    def tables_changed(self, use: SwitchUse) -> None:
        """Switch tables moved outside a placement (a VM's ports moved): follow in memory.

        ``use`` holds signed deltas as the store's switch rows took them: a bind's
        positive, an unbind's negative.
        """
        with self._lock:
            if self._scheduler is not None:
                for sw, mac, arp, vlans in use:
                    if sw in self._scheduler.cluster.switches:
                        self._scheduler.cluster.add_switch_use(sw, mac, arp, vlans)

    def _give_back(self, use: SwitchUse) -> None:
        assert self._scheduler is not None
        for sw, mac, arp, vlans in use:
            if sw in self._scheduler.cluster.switches:
                self._scheduler.cluster.add_switch_use(sw, -mac, -arp, -vlans)

    def host_state_changed(self, host_id: uuid.UUID, state: str) -> None:
        with self._lock:
            if self._scheduler is not None and host_id in self._scheduler.cluster.hosts:
                self._scheduler.cluster.set_state(host_id, state)
