"""Disaster recovery: if a site were lost, which VMs come back elsewhere keeping their IPs?

Before anything moves, the site evacuation plan answers per VM: its addresses
can be kept (its VLANs can be extended over an L2 interconnect to a switched
module of the other site) and a host there can take it — or it would need new
addresses, and why. It also lists each high-availability group with members in
the site: an anti-affinity group at site level keeps members elsewhere, so the
service survives the loss without any move.

Each VM is judged on its own against today's free capacity; the plan does not
add up the capacity all of them would need together.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from fuyun.domain.vm_states import VmState
from fuyun.services.inventory import resolve_ref
from fuyun.services.migration.plan import Target, plan_move
from fuyun.services.principal import Principal
from fuyun.store.models import Host, ServerGroup, Site, Tenant, Vm


@dataclass(frozen=True)
class SiteVm:
    vm_id: str
    vm: str
    tenant: str
    host: str
    keeps_ip: bool
    target_host: str | None
    interconnects: list[str]
    reasons: list[str]


@dataclass(frozen=True)
class HaGroup:
    group: str
    tenant: str
    policy: str
    level: str
    in_site: int
    elsewhere: int

    @property
    def survives(self) -> bool:
        return self.elsewhere > 0


@dataclass
class SiteEvacuationPlan:
    site: str
    to_site: str | None
    vms: list[SiteVm] = field(default_factory=list)
    groups: list[HaGroup] = field(default_factory=list)

    @property
    def keep_ip(self) -> int:
        return sum(1 for v in self.vms if v.keeps_ip)

    @property
    def readdress(self) -> int:
        return len(self.vms) - self.keep_ip


def site_plan(
    rt: Any, principal: Principal, site: str, *, to_site: str | None = None
) -> SiteEvacuationPlan:
    principal.require_operator()
    with rt.db.read_session() as s:
        site_id = resolve_ref(s, Site, site, "site")
        to_id = resolve_ref(s, Site, to_site, "to_site") if to_site else None
        if to_id == site_id:
            from fuyun.domain.errors import InvalidInput

            raise InvalidInput("to_site must be another site", field="to_site")
        others = [
            name
            for sid, name in s.execute(select(Site.id, Site.name).order_by(Site.name))
            if sid != site_id and (to_id is None or sid == to_id)
        ]
        tenants = dict(s.execute(select(Tenant.id, Tenant.name)).all())
        rows = list(
            s.execute(
                select(Vm, Host.name)
                .join(Host, Host.id == Vm.host_id)
                .where(
                    Host.site_id == site_id,
                    Vm.state.in_((VmState.ACTIVE.value, VmState.STOPPED.value)),
                )
                .order_by(Vm.name)
            )
        )
        out = SiteEvacuationPlan(site=site, to_site=to_site)
        for vm, host in rows:
            out.vms.append(_judge(rt, s, vm, host, others, tenants))
        out.groups = _groups(s, site_id, tenants, [vm for vm, _ in rows])
        return out


def _judge(
    rt: Any, s: Any, vm: Vm, host: str, sites: list[str], tenants: dict[uuid.UUID, str]
) -> SiteVm:
    reasons: list[str] = []
    for other in sites:
        plan = plan_move(rt, s, vm, Target(site=other))
        if plan.feasible:
            return SiteVm(
                str(vm.id),
                vm.name,
                tenants.get(vm.tenant_id, ""),
                host,
                True,
                plan.target_host,
                sorted({p.interconnect for p in plan.ports if p.interconnect}),
                [],
            )
        reasons += [f"{other}: {r}" for r in plan.reasons]
    network = [r for r in reasons if ": network " in r]
    return SiteVm(
        str(vm.id),
        vm.name,
        tenants.get(vm.tenant_id, ""),
        host,
        False,
        None,
        [],
        network or reasons or ["no other site"],
    )


def _groups(
    s: Any, site_id: uuid.UUID, tenants: dict[uuid.UUID, str], in_site: list[Vm]
) -> list[HaGroup]:
    ids = {vm.group_id for vm in in_site if vm.group_id is not None}
    if not ids:
        return []
    counts: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for group_id, host_site in s.execute(
        select(Vm.group_id, Host.site_id)
        .join(Host, Host.id == Vm.host_id)
        .where(Vm.group_id.in_(ids), Vm.state != VmState.DELETED.value)
    ):
        counts[group_id][0 if host_site == site_id else 1] += 1
    out = []
    for g in s.scalars(
        select(ServerGroup).where(ServerGroup.id.in_(ids)).order_by(ServerGroup.name)
    ):
        here, elsewhere = counts[g.id]
        out.append(
            HaGroup(g.name, tenants.get(g.tenant_id, ""), g.policy, g.level, here, elsewhere)
        )
    return out
