"""Moving a whole fabric between a :class:`FabricSpec` and the store, fast.

A fabric of 100,000 hosts is loaded with one multi-row ``INSERT`` per table
(SQLAlchemy Core ``executemany``) and ids made up front, never an ORM object per
host: that is the difference between seconds and minutes. Everything runs in the
caller's session and transaction (the caller — a service or the CLI — owns the
commit), and everything that could refuse the load is checked *before* the first
row is written, so a refused load leaves nothing behind even without a rollback.

Site aggregates become the roots of the global address plan (``prefixes`` of kind
``aggregate``). The store keeps entries unordered; :func:`canonical` states exactly
what survives, so that
``export_from_store(load_into_store(spec)) == canonical(spec)``.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from fuyun.domain.errors import Conflict, InvalidInput
from fuyun.fabric.check import Severity, check_fabric
from fuyun.fabric.spec import (
    FabricSpec,
    FlavorSpec,
    HostSpec,
    InterconnectSpec,
    ModuleLinkSpec,
    ModuleSpec,
    ServerModelSpec,
    SiteSpec,
    SwitchSpec,
)
from fuyun.fabric.torports import fill_tor_ports
from fuyun.fabric.torports import resolve as resolve_tor_ports
from fuyun.ipam.addresses import pack
from fuyun.store.models import (
    Flavor,
    Host,
    Interconnect,
    Module,
    ModuleLink,
    Prefix,
    ServerModel,
    Site,
    Switch,
    SwitchUplink,
)
from fuyun.store.types import utcnow

_E = TypeVar(
    "_E",
    ServerModelSpec,
    FlavorSpec,
    SiteSpec,
    InterconnectSpec,
    ModuleSpec,
    ModuleLinkSpec,
    SwitchSpec,
    HostSpec,
)
_MB_PER_GB = 1024  # memory and disk: binary units
_MBPS_PER_GBPS = 1000  # link speeds: decimal units
_SHOWN = 10


@dataclass(frozen=True)
class LoadSummary:
    """Rows written by :func:`load_into_store`, and how long it took."""

    server_models: int
    flavors: int
    sites: int
    interconnects: int
    modules: int
    module_links: int
    switches: int
    uplinks: int
    hosts: int
    reused_catalog: int
    seconds: float


def load_into_store(session: Session, spec: FabricSpec) -> LoadSummary:
    """Insert ``spec`` into the store within ``session``'s transaction; never commits.

    Raises :class:`InvalidInput` when ``spec`` fails :func:`check_fabric` with errors,
    and :class:`Conflict` when a site, interconnect, module, switch, host or management
    address already exists in the store, or a server model or flavor exists with other
    values (an identical one is reused: the catalog is shared by every fabric). Both
    are raised before anything is written.
    """
    started = time.perf_counter()
    errors = [f for f in check_fabric(spec) if f.severity is Severity.ERROR]
    if errors:
        shown = "; ".join(f"{f.place}.{f.field}: {f.message}" for f in errors[:_SHOWN])
        more = f" (and {len(errors) - _SHOWN} more)" if len(errors) > _SHOWN else ""
        raise InvalidInput(
            f"fabric fails its acceptance check with {len(errors)} error(s): {shown}{more}",
            field=errors[0].place,
            code="fabric_check_failed",
        )
    models, new_models, new_flavors = _catalog(session, spec)
    _refuse_existing(session, spec)
    rows = _Rows(spec, models)
    try:
        for table, batch in rows.tables(new_models, new_flavors):
            if batch:
                session.execute(insert(table), batch)
    except IntegrityError as exc:
        raise Conflict(f"the store refused the fabric: {exc.orig}") from exc
    catalog_size = len(spec.server_models) + len(spec.flavors)
    return LoadSummary(
        server_models=len(new_models),
        flavors=len(new_flavors),
        sites=len(spec.sites),
        interconnects=len(spec.interconnects),
        modules=len(spec.modules),
        module_links=len(spec.module_links),
        switches=len(spec.switches),
        uplinks=sum(len(set(s.uplinks)) for s in spec.switches),
        hosts=len(spec.hosts),
        reused_catalog=catalog_size - len(new_models) - len(new_flavors),
        seconds=time.perf_counter() - started,
    )


def _catalog(
    session: Session, spec: FabricSpec
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[FlavorSpec]]:
    """Every model's row by name (a stored one keeps its id), the model rows still to
    insert, and the flavors still to insert; :class:`Conflict` if one differs."""
    now = utcnow()
    stored = {r.name: r._asdict() for r in session.execute(select(ServerModel.__table__))}
    models: dict[str, dict[str, Any]] = {}
    new_models = []
    for model in spec.server_models:
        row = models[model.name] = _model_row(model, now)
        old = stored.get(model.name)
        if old is None:
            new_models.append(row)
        elif any(old[k] != row[k] for k in _MODEL_VALUES):
            raise Conflict(
                f"server model {model.name} exists in the store with other values",
                field="server_models",
            )
        else:
            row["id"] = old["id"]
    stored_flavors = {
        r.name: FlavorSpec.model_validate(r._asdict())
        for r in session.execute(select(Flavor.name, *_columns(Flavor, _FLAVOR_VALUES)))
    }
    new_flavors = []
    for flavor in spec.flavors:
        old_flavor = stored_flavors.get(flavor.name)
        if old_flavor is None:
            new_flavors.append(flavor)
        elif old_flavor != flavor:
            raise Conflict(
                f"flavor {flavor.name} exists in the store with other values", field="flavors"
            )
    return models, new_models, new_flavors


_MODEL_VALUES = ("cores", "ram_mb", "disk_gb", "nic_count", "nic_speed_mbps")


def _model_row(model: ServerModelSpec, now: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "name": model.name,
        "cores": model.cores,
        "ram_mb": model.ram_gb * _MB_PER_GB,
        "disk_gb": model.disk_gb,
        "nic_count": model.nic_count,
        "nic_speed_mbps": model.nic_speed_gbps * _MBPS_PER_GBPS,
        "created_at": now,
        "updated_at": now,
    }


def _refuse_existing(session: Session, spec: FabricSpec) -> None:
    """Raise :class:`Conflict` naming what already exists; reads names only."""
    clashes: list[str] = []
    for label, table, entries in (
        ("sites", Site.__table__, spec.sites),
        ("interconnects", Interconnect.__table__, spec.interconnects),
        ("modules", Module.__table__, spec.modules),
        ("module links", ModuleLink.__table__, spec.module_links),
        ("switches", Switch.__table__, spec.switches),
        ("hosts", Host.__table__, spec.hosts),
    ):
        stored = set(session.scalars(select(table.c.name)))
        if stored:
            clashes += [f"{label} {e.name}" for e in entries if e.name in stored]
    addresses: set[str] = set()
    for table in (Switch.__table__, Host.__table__):
        query = select(table.c.mgmt_address).where(table.c.mgmt_address.is_not(None))
        addresses.update(session.scalars(query))
    if addresses:
        for entries in (spec.switches, spec.hosts):
            clashes += [
                f"management address {e.mgmt_address} ({e.name})"
                for e in entries
                if e.mgmt_address in addresses
            ]
    if clashes:
        more = f" and {len(clashes) - _SHOWN} more" if len(clashes) > _SHOWN else ""
        raise Conflict(f"already in the store: {', '.join(clashes[:_SHOWN])}{more}")


class _Rows:
    """The rows of every table, with ids assigned up front so references need no query."""

    def __init__(self, spec: FabricSpec, models: dict[str, dict[str, Any]]):
        self.spec = spec
        self.models = models
        self.now = utcnow()
        self.site_ids = {s.name: uuid.uuid4() for s in spec.sites}
        self.module_ids = {m.name: uuid.uuid4() for m in spec.modules}
        self.module_site = {m.name: self.site_ids[m.site] for m in spec.modules}
        self.switch_ids = {s.name: uuid.uuid4() for s in spec.switches}
        self.switch_module = {s.name: s.module for s in spec.switches}

    def tables(
        self, new_models: list[dict[str, Any]], flavors: list[FlavorSpec]
    ) -> list[tuple[Table, list[dict[str, Any]]]]:
        """(table, rows) in foreign-key order."""
        return [
            (ServerModel.__table__, new_models),
            (Flavor.__table__, [self._flavor(f) for f in flavors]),
            (Site.__table__, [self._site(s) for s in self.spec.sites]),
            (Prefix.__table__, [self._aggregate(s) for s in self.spec.sites if s.aggregate]),
            (Interconnect.__table__, [self._interconnect(i) for i in self.spec.interconnects]),
            (Module.__table__, [self._module(m) for m in self.spec.modules]),
            (ModuleLink.__table__, [self._module_link(m) for m in self.spec.module_links]),
            (Switch.__table__, [self._switch(s) for s in self.spec.switches]),
            (SwitchUplink.__table__, self._uplinks()),
            (Host.__table__, self._hosts()),
        ]

    def _stamp(self, row: dict[str, Any], id_: uuid.UUID | None = None) -> dict[str, Any]:
        row["id"] = id_ or uuid.uuid4()
        row["created_at"] = row["updated_at"] = self.now
        return row

    def _flavor(self, f: FlavorSpec) -> dict[str, Any]:
        return self._stamp(f.model_dump())

    def _site(self, s: SiteSpec) -> dict[str, Any]:
        row = {"name": s.name, "city": s.city, "description": s.description}
        return self._stamp(row, self.site_ids[s.name])

    def _aggregate(self, s: SiteSpec) -> dict[str, Any]:
        assert s.aggregate is not None
        net = s.aggregate
        row = {
            "vrf_id": None,
            "parent_id": None,
            "kind": "aggregate",
            "cidr": str(net),
            "family": net.version,
            "first": pack(int(net.network_address)),
            "last": pack(int(net.broadcast_address)),
            "prefix_len": net.prefixlen,
            "site_id": self.site_ids[s.name],
            "module_id": None,
            "subnet_id": None,
            "description": f"site {s.name} aggregate",
        }
        return self._stamp(row)

    def _interconnect(self, i: InterconnectSpec) -> dict[str, Any]:
        return self._stamp(
            {
                "name": i.name,
                "site_a_id": self.site_ids[i.site_a],
                "site_b_id": self.site_ids[i.site_b],
                "l2_extension": i.l2_extension.value,
                "bandwidth_mbps": i.bandwidth_gbps * _MBPS_PER_GBPS,
            }
        )

    def _module_link(self, link: ModuleLinkSpec) -> dict[str, Any]:
        return self._stamp(
            {
                "name": link.name,
                "module_a_id": self.module_ids[link.module_a],
                "module_b_id": self.module_ids[link.module_b],
                "l2_extension": link.l2_extension.value,
                "bandwidth_mbps": link.bandwidth_gbps * _MBPS_PER_GBPS,
            }
        )

    def _module(self, m: ModuleSpec) -> dict[str, Any]:
        row = {
            "name": m.name,
            "site_id": self.site_ids[m.site],
            "fabric_kind": m.fabric_kind.value,
            "l2_technology": m.l2_technology.value if m.l2_technology else None,
            "enforcement_point": m.enforcement_point.value,
        }
        return self._stamp(row, self.module_ids[m.name])

    def _switch(self, s: SwitchSpec) -> dict[str, Any]:
        row = {
            "name": s.name,
            "site_id": self.module_site[s.module],
            "module_id": self.module_ids[s.module],
            "role": s.role.value,
            "platform": s.platform.value,
            "mgmt_address": s.mgmt_address,
            "port_count": s.port_count,
            "uplink_mbps": s.uplink_gbps * _MBPS_PER_GBPS,
            "mac_capacity": s.mac_capacity,
            "arp_capacity": s.arp_capacity,
            "vlan_capacity": s.vlan_capacity,
            "acl_capacity": s.acl_capacity,
            "used_mac": 0,
            "used_arp": 0,
            "used_vlans": 0,
            "used_acl": 0,
        }
        return self._stamp(row, self.switch_ids[s.name])

    def _uplinks(self) -> list[dict[str, Any]]:
        return [
            {"switch_id": self.switch_ids[s.name], "uplink_id": self.switch_ids[up]}
            for s in self.spec.switches
            for up in dict.fromkeys(s.uplinks)
        ]

    def _hosts(self) -> list[dict[str, Any]]:
        rows = []
        now, models = self.now, self.models
        switch_ids, switch_module = self.switch_ids, self.switch_module
        for h, tor_port in zip(self.spec.hosts, resolve_tor_ports(self.spec), strict=True):
            tor = h.tor or ""  # check_fabric has proved every host is cabled
            module = switch_module[tor]
            model = models[h.model]
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "name": h.name,
                    "site_id": self.module_site[module],
                    "module_id": self.module_ids[module],
                    "tor_id": switch_ids[tor],
                    "server_model_id": model["id"],
                    "mgmt_address": h.mgmt_address,
                    "tor_port": tor_port,
                    "hypervisor": h.hypervisor.value,
                    "vswitch": h.vswitch.value,
                    "state": h.state.value,
                    "vcpus": model["cores"],
                    "ram_mb": model["ram_mb"],
                    "disk_gb": model["disk_gb"],
                    "nic_mbps": model["nic_count"] * model["nic_speed_mbps"],
                    "max_vms": h.max_vms,
                    "used_vcpus": 0,
                    "used_ram_mb": 0,
                    "used_disk_gb": 0,
                    "used_bandwidth_mbps": 0,
                    "vm_count": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return rows


def canonical(spec: FabricSpec) -> FabricSpec:
    """``spec`` as the store keeps it: every list sorted by name, uplinks sorted and
    de-duplicated, every host's ToR interface resolved."""
    spec = fill_tor_ports(spec)
    return spec.model_copy(
        update={
            "server_models": _by_name(spec.server_models),
            "flavors": _by_name(spec.flavors),
            "sites": _by_name(spec.sites),
            "interconnects": _by_name(spec.interconnects),
            "modules": _by_name(spec.modules),
            "module_links": _by_name(spec.module_links),
            "switches": [
                s.model_copy(update={"uplinks": sorted(set(s.uplinks))})
                for s in _by_name(spec.switches)
            ],
            "hosts": _by_name(spec.hosts),
        }
    )


def _by_name(entries: list[_E]) -> list[_E]:
    return sorted(entries, key=lambda e: e.name)


def export_from_store(session: Session, name: str = "fabric") -> FabricSpec:
    """The whole fabric in the store as a spec, in :func:`canonical` form.

    Reads with joins so no id is turned into a Python UUID; sorts in Python, because
    PostgreSQL's collations would order names differently from SQLite.
    """
    site_a, site_b, upper = aliased(Site), aliased(Site), aliased(Switch)
    module_a, module_b = aliased(Module), aliased(Module)
    uplinks: defaultdict[str, list[str]] = defaultdict(list)
    for lower_name, upper_name in session.execute(
        select(Switch.name, upper.name)
        .join(SwitchUplink, SwitchUplink.switch_id == Switch.id)
        .join(upper, SwitchUplink.uplink_id == upper.id)
    ):
        uplinks[lower_name].append(upper_name)

    def rows(query: Select[Any]) -> list[dict[str, Any]]:
        return [row._asdict() for row in session.execute(query)]

    models = rows(select(ServerModel.name, *_columns(ServerModel, _MODEL_VALUES)))
    for m in models:
        m["ram_gb"] = m.pop("ram_mb") // _MB_PER_GB
        m["nic_speed_gbps"] = m.pop("nic_speed_mbps") // _MBPS_PER_GBPS
    interconnects = rows(
        select(Interconnect.name, site_a.name.label("site_a"), site_b.name.label("site_b"))
        .add_columns(Interconnect.l2_extension, Interconnect.bandwidth_mbps)
        .join(site_a, Interconnect.site_a_id == site_a.id)
        .join(site_b, Interconnect.site_b_id == site_b.id)
    )
    for i in interconnects:
        i["bandwidth_gbps"] = max(1, i.pop("bandwidth_mbps") // _MBPS_PER_GBPS)
    module_links = rows(
        select(ModuleLink.name, module_a.name.label("module_a"), module_b.name.label("module_b"))
        .add_columns(ModuleLink.l2_extension, ModuleLink.bandwidth_mbps)
        .join(module_a, ModuleLink.module_a_id == module_a.id)
        .join(module_b, ModuleLink.module_b_id == module_b.id)
    )
    for link in module_links:
        link["bandwidth_gbps"] = max(1, link.pop("bandwidth_mbps") // _MBPS_PER_GBPS)
    modules = rows(
        select(Module.name, Site.name.label("site"))
        .add_columns(*_columns(Module, ("fabric_kind", "l2_technology", "enforcement_point")))
        .join(Site, Module.site_id == Site.id)
    )
    switches = rows(
        select(Switch.name, Module.name.label("module"))
        .add_columns(*_columns(Switch, _SWITCH_VALUES))
        .join(Module, Switch.module_id == Module.id)
    )
    for sw in switches:
        sw["uplink_gbps"] = max(1, sw.pop("uplink_mbps") // _MBPS_PER_GBPS)
        sw["uplinks"] = sorted(uplinks.get(sw["name"], ()))
    hosts = rows(
        select(Host.name, Switch.name.label("tor"), ServerModel.name.label("model"))
        .add_columns(*_columns(Host, _HOST_VALUES))
        .join(Switch, Host.tor_id == Switch.id)
        .join(ServerModel, Host.server_model_id == ServerModel.id)
    )
    aggregates = dict(
        session.execute(
            select(Site.name, Prefix.cidr)
            .join(Prefix, Prefix.site_id == Site.id)
            .where(Prefix.kind == "aggregate", Prefix.vrf_id.is_(None), Prefix.parent_id.is_(None))
            .order_by(Prefix.family.desc())
        ).all()
    )
    return canonical(
        FabricSpec(
            name=name,
            server_models=[ServerModelSpec(**m) for m in models],
            flavors=rows(select(Flavor.name, *_columns(Flavor, _FLAVOR_VALUES))),
            sites=[
                {**site, "aggregate": aggregates.get(site["name"])}
                for site in rows(select(Site.name, Site.city, Site.description))
            ],
            interconnects=[InterconnectSpec(**i) for i in interconnects],
            modules=[ModuleSpec(**m) for m in modules],
            module_links=[ModuleLinkSpec(**link) for link in module_links],
            switches=[SwitchSpec(**sw) for sw in switches],
            hosts=[HostSpec(**h) for h in hosts],
        )
    )


_FLAVOR_VALUES = ("vcpus", "ram_mb", "disk_gb", "bandwidth_mbps")
_SWITCH_VALUES = (
    "role",
    "platform",
    "mgmt_address",
    "port_count",
    "uplink_mbps",
    "mac_capacity",
    "arp_capacity",
    "vlan_capacity",
    "acl_capacity",
)
_HOST_VALUES = ("mgmt_address", "tor_port", "hypervisor", "vswitch", "max_vms", "state")


def _columns(table: type[Any], names: tuple[str, ...]) -> list[Any]:
    return [getattr(table, n) for n in names]
