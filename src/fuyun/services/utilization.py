"""The address utilization report: per subnet, network (its VLANs) and module.

For each subnet: its size, the addresses reserved (boundaries, gateway,
infrastructure), allocated, quarantined and free. ``boundary_loss`` is what the
network's growth cost: the reserved addresses of every subnet after the first of
its family — the price of ``secondary`` — plus, for ``new-vlan``, one VLAN per
growth step. Operators compare the two strategies by these numbers.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.services.addressing import free_count, state_counts
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Module, Network, Segment, Subnet, VlanAllocation, VlanPool


@dataclass(frozen=True)
class SubnetUsage:
    id: uuid.UUID
    cidr: str
    vlan: int
    primary: bool
    size: int
    reserved: int
    allocated: int
    quarantined: int
    free: int


@dataclass
class NetworkUsage:
    id: uuid.UUID
    name: str
    tenant_id: uuid.UUID
    module: str
    growth: str
    vlans: list[int] = field(default_factory=list)
    subnets: list[SubnetUsage] = field(default_factory=list)

    @property
    def allocated(self) -> int:
        return sum(s.allocated for s in self.subnets)

    @property
    def free(self) -> int:
        return sum(s.free for s in self.subnets)

    @property
    def quarantined(self) -> int:
        return sum(s.quarantined for s in self.subnets)

    @property
    def reserved(self) -> int:
        return sum(s.reserved for s in self.subnets)

    @property
    def boundary_loss(self) -> int:
        """Reserved addresses of growth subnets: what splitting the space cost."""
        seen: set[int] = set()
        loss = 0
        for s in self.subnets:
            family = 6 if ":" in s.cidr else 4
            if family in seen:
                loss += s.reserved
            seen.add(family)
        return loss

    @property
    def growth_vlans(self) -> int:
        return max(0, len(self.vlans) - 1)


@dataclass(frozen=True)
class ModuleUsage:
    name: str
    networks: int
    vlans_used: int
    vlan_pool_size: int
    allocated: int
    free: int
    quarantined: int
    reserved: int
    boundary_loss: int


@dataclass(frozen=True)
class Report:
    networks: list[NetworkUsage]
    modules: list[ModuleUsage]


def _subnet_usage(s: Session, sub: Subnet, vlan: int) -> SubnetUsage:
    counts = state_counts(s, sub.id)
    size = 2 ** ((32 if sub.family == 4 else 128) - sub.prefix_len)
    free = free_count(s, sub.id)
    allocated, quarantined = counts["allocated"], counts["quarantined"]
    reserved = size - allocated - quarantined - free
    return SubnetUsage(
        sub.id, sub.cidr, vlan, sub.primary, size, reserved, allocated, quarantined, free
    )


def report(
    db: Database,
    principal: Principal,
    *,
    network_id: uuid.UUID | None = None,
    module: str | None = None,
) -> Report:
    with db.read_session() as s:
        stmt = principal.scope(select(Network), Network.tenant_id).order_by(Network.name)
        if network_id is not None:
            stmt = stmt.where(Network.id == network_id)
        modules = {m.id: m for m in s.scalars(select(Module))}
        if module is not None:
            ids = [m.id for m in modules.values() if m.name == module or str(m.id) == module]
            stmt = stmt.where(Network.module_id.in_(ids))
        usages: list[NetworkUsage] = []
        for net in s.scalars(stmt):
            segs = {
                seg.id: seg.vlan
                for seg in s.scalars(
                    select(Segment).where(Segment.network_id == net.id).order_by(Segment.index)
                )
            }
            usage = NetworkUsage(
                net.id,
                net.name,
                net.tenant_id,
                modules[net.module_id].name,
                net.growth,
                vlans=list(segs.values()),
            )
            for sub in s.scalars(
                select(Subnet)
                .where(Subnet.network_id == net.id)
                .order_by(Subnet.created_at, Subnet.first)
            ):
                usage.subnets.append(_subnet_usage(s, sub, segs[sub.segment_id]))
            usages.append(usage)
        module_rows: list[ModuleUsage] = []
        if principal.sees_everything:
            module_rows = _modules(s, modules, usages)
        return Report(networks=usages, modules=module_rows)


def _modules(
    s: Session, modules: dict[uuid.UUID, Module], usages: list[NetworkUsage]
) -> list[ModuleUsage]:
    by_module: dict[str, list[NetworkUsage]] = defaultdict(list)
    for u in usages:
        by_module[u.module].append(u)
    pools = {p.module_id: p for p in s.scalars(select(VlanPool))}
    used = dict(
        s.execute(
            select(VlanAllocation.pool_id, func.count()).group_by(VlanAllocation.pool_id)
        ).all()
    )
    rows = []
    for m in sorted(modules.values(), key=lambda m: m.name):
        nets = by_module.get(m.name, [])
        pool = pools.get(m.id)
        if not nets and pool is None:
            continue
        size = (
            0
            if pool is None
            else pool.vlan_max
            - pool.vlan_min
            + 1
            - len([v for v in pool.reserved if pool.vlan_min <= v <= pool.vlan_max])
        )
        rows.append(
            ModuleUsage(
                name=m.name,
                networks=len(nets),
                vlans_used=used.get(pool.id, 0) if pool else 0,
                vlan_pool_size=size,
                allocated=sum(n.allocated for n in nets),
                free=sum(n.free for n in nets),
                quarantined=sum(n.quarantined for n in nets),
                reserved=sum(n.reserved for n in nets),
                boundary_loss=sum(n.boundary_loss for n in nets),
            )
        )
    return rows
