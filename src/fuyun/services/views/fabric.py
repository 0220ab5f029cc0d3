"""The fabric as operators see it at a glance: sites → modules → ToRs, a module's hosts.

Aggregated in the store: the ``default`` fabric's 6,400 hosts become one ``GROUP BY``
over hosts per ToR (160 cells), and a module's page reads its own hosts only (about
800), so a heat map never loads thousands of ORM objects. Operators and tenant-less
viewers only (the physical fabric is not a partner's to see). Shared by the portal's
console and anything else that draws the map; reads only.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import case, func, select

from fuyun.domain.enums import HostState, SwitchRole
from fuyun.domain.errors import Forbidden, NotFound
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Host, Module, Site, Switch


def ratio(used: float, capacity: float) -> float:
    """Used over capacity, clamped to [0, 1]; nothing of nothing is 0, not an error."""
    if capacity <= 0:
        return 0.0
    return max(0.0, min(1.0, used / capacity))


@dataclass(frozen=True)
class Usage:
    """Totals of hosts (under a ToR, in a module) or one switch's tables."""

    vcpus_used: int = 0
    vcpus_cap: float = 0
    ram_used: int = 0
    ram_cap: float = 0
    vms: int = 0
    max_vms: int = 0
    mac: float = 0.0
    arp: float = 0.0
    vlan: float = 0.0

    def value(self, key: str) -> float:
        if key == "cpu":
            return ratio(self.vcpus_used, self.vcpus_cap)
        if key == "ram":
            return ratio(self.ram_used, self.ram_cap)
        if key == "density":
            return ratio(self.vms, self.max_vms)
        return float(getattr(self, key))

    @property
    def worst_table(self) -> float:
        return max(self.mac, self.arp, self.vlan)


def _require_fabric(principal: Principal) -> None:
    if not principal.sees_everything:
        raise Forbidden("only operators may see the fabric")


@dataclass(frozen=True)
class SwitchRow:
    id: uuid.UUID
    name: str
    role: str
    module_id: uuid.UUID
    used: tuple[int, int, int]  # MAC, ARP, VLAN entries in use
    capacity: tuple[int, int, int]

    @property
    def usage(self) -> Usage:
        mac, arp, vlan = (ratio(u, c) for u, c in zip(self.used, self.capacity, strict=True))
        return Usage(mac=mac, arp=arp, vlan=vlan)


@dataclass
class TorCell:
    switch: SwitchRow
    hosts: int = 0
    maintenance: int = 0
    failed: int = 0
    usage: Usage = field(default_factory=Usage)


@dataclass
class ModuleView:
    id: uuid.UUID
    name: str
    fabric_kind: str
    l2_technology: str | None
    tors: list[TorCell] = field(default_factory=list)
    aggregation: list[SwitchRow] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def hosts(self) -> int:
        return sum(t.hosts for t in self.tors)


@dataclass
class SiteView:
    id: uuid.UUID
    name: str
    city: str
    modules: list[ModuleView] = field(default_factory=list)


def _sum(usages: list[Usage], tables: list[Usage]) -> Usage:
    """Host totals added up; switch tables as the worst switch (the one that fills first)."""
    return Usage(
        vcpus_used=sum(u.vcpus_used for u in usages),
        vcpus_cap=sum(u.vcpus_cap for u in usages),
        ram_used=sum(u.ram_used for u in usages),
        ram_cap=sum(u.ram_cap for u in usages),
        vms=sum(u.vms for u in usages),
        max_vms=sum(u.max_vms for u in usages),
        mac=max((t.mac for t in tables), default=0.0),
        arp=max((t.arp for t in tables), default=0.0),
        vlan=max((t.vlan for t in tables), default=0.0),
    )


def _switches(db: Database, module_id: uuid.UUID | None = None) -> list[SwitchRow]:
    stmt = select(
        Switch.id,
        Switch.name,
        Switch.role,
        Switch.module_id,
        Switch.used_mac,
        Switch.used_arp,
        Switch.used_vlans,
        Switch.mac_capacity,
        Switch.arp_capacity,
        Switch.vlan_capacity,
    ).order_by(Switch.name)
    if module_id is not None:
        stmt = stmt.where(Switch.module_id == module_id)
    with db.read_session() as s:
        return [SwitchRow(r[0], r[1], r[2], r[3], r[4:7], r[7:10]) for r in s.execute(stmt)]


def fabric_map(
    db: Database, principal: Principal, cpu_ratio: float, ram_ratio: float
) -> list[SiteView]:
    """Sites → modules → ToRs, each ToR with the totals of its hosts: one GROUP BY."""
    _require_fabric(principal)
    switches = _switches(db)
    with db.read_session() as s:
        sites = [SiteView(*r) for r in s.execute(select(Site.id, Site.name, Site.city))]
        modules = list(
            s.execute(
                select(
                    Module.id, Module.name, Module.site_id, Module.fabric_kind, Module.l2_technology
                ).order_by(Module.name)
            )
        )
        per_tor = {
            r[0]: r[1:]
            for r in s.execute(
                select(
                    Host.tor_id,
                    func.count(),
                    func.sum(case((Host.state == HostState.MAINTENANCE.value, 1), else_=0)),
                    func.sum(case((Host.state == HostState.FAILED.value, 1), else_=0)),
                    func.sum(Host.vcpus),
                    func.sum(Host.used_vcpus),
                    func.sum(Host.ram_mb),
                    func.sum(Host.used_ram_mb),
                    func.sum(Host.vm_count),
                    func.sum(Host.max_vms),
                ).group_by(Host.tor_id)
            )
        }
    by_module: dict[uuid.UUID, ModuleView] = {}
    site_of = {site.id: site for site in sites}
    for mid, name, site_id, kind, l2 in modules:
        view = ModuleView(mid, name, kind, l2)
        by_module[mid] = view
        site_of[site_id].modules.append(view)
    for sw in switches:
        module = by_module[sw.module_id]
        if sw.role == SwitchRole.AGGREGATION.value:
            module.aggregation.append(sw)
            continue
        n, maint, failed, vcpus, used_vcpus, ram, used_ram, vms, max_vms = per_tor.get(
            sw.id, (0,) * 9
        )
        tables = sw.usage
        module.tors.append(
            TorCell(
                sw,
                n,
                maint or 0,
                failed or 0,
                Usage(
                    used_vcpus or 0,
                    (vcpus or 0) * cpu_ratio,
                    used_ram or 0,
                    (ram or 0) * ram_ratio,
                    vms or 0,
                    max_vms or 0,
                    tables.mac,
                    tables.arp,
                    tables.vlan,
                ),
            )
        )
    for module in by_module.values():
        module.usage = _sum(
            [t.usage for t in module.tors],
            [t.usage for t in module.tors] + [a.usage for a in module.aggregation],
        )
    return sorted(sites, key=lambda site: site.name)


def hot_switch_rows(db: Database, principal: Principal, threshold: float) -> list[SwitchRow]:
    """Every switch with a MAC, ARP or VLAN table at or above ``threshold``, fullest first."""
    _require_fabric(principal)
    rows = [sw for sw in _switches(db) if sw.usage.worst_table >= threshold]
    return sorted(rows, key=lambda sw: -sw.usage.worst_table)


@dataclass(frozen=True)
class HostCell:
    id: uuid.UUID
    name: str
    state: str
    usage: Usage


@dataclass
class ModuleGrid:
    id: uuid.UUID
    name: str
    site: str
    fabric_kind: str
    l2_technology: str | None
    rows: list[tuple[SwitchRow, list[HostCell]]]
    aggregation: list[SwitchRow]


def module_grid(
    db: Database, principal: Principal, module_id: uuid.UUID, cpu_ratio: float, ram_ratio: float
) -> ModuleGrid:
    """One module: a row per ToR, a cell per host (a few hundred cells, not thousands)."""
    _require_fabric(principal)
    with db.read_session() as s:
        module = s.get(Module, module_id)
        if module is None:
            raise NotFound("no such module", field="module_id")
        site = s.get(Site, module.site_id)
        hosts = list(
            s.execute(
                select(
                    Host.id,
                    Host.name,
                    Host.tor_id,
                    Host.state,
                    Host.vcpus,
                    Host.used_vcpus,
                    Host.ram_mb,
                    Host.used_ram_mb,
                    Host.vm_count,
                    Host.max_vms,
                )
                .where(Host.module_id == module_id)
                .order_by(Host.name)
            )
        )
    switches = _switches(db, module_id)
    under: dict[uuid.UUID, list[HostCell]] = defaultdict(list)
    tables = {sw.id: sw.usage for sw in switches}
    for hid, name, tor, state, vcpus, uv, ram, ur, vms, max_vms in hosts:
        t = tables.get(tor, Usage())
        usage = Usage(
            uv, vcpus * cpu_ratio, ur, ram * ram_ratio, vms, max_vms, t.mac, t.arp, t.vlan
        )
        under[tor].append(HostCell(hid, name, state, usage))
    return ModuleGrid(
        module.id,
        module.name,
        site.name if site else "",
        module.fabric_kind,
        module.l2_technology,
        [(sw, under[sw.id]) for sw in switches if sw.role == SwitchRole.TOR.value],
        [sw for sw in switches if sw.role == SwitchRole.AGGREGATION.value],
    )


def host_states(db: Database, principal: Principal) -> dict[str, int]:
    _require_fabric(principal)
    with db.read_session() as s:
        return dict(s.execute(select(Host.state, func.count()).group_by(Host.state)).all())
