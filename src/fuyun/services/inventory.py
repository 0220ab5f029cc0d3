"""The fabric inventory: reads for everyone allowed to see the fabric, writes for operators.

Tenants do not see the physical fabric (hosts, switches, modules, sites): that is
the operator's world, and hiding it keeps tenant placement opaque. Catalogs
(flavors) are readable by everyone.

The resources share one shape, so they share one implementation: a
:class:`Resource` describes a table, its filters, which fields may change after
creation, and which name-references to resolve.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuyun.domain.enums import HostState, SwitchRole
from fuyun.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from fuyun.domain.vm_states import VmState
from fuyun.fabric.torports import derive
from fuyun.services.audit import mutation
from fuyun.services.enforcement import recompile, rehome
from fuyun.services.pagination import Page, paginate, prefix_filter
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import (
    Flavor,
    Host,
    Interconnect,
    Module,
    ModuleLink,
    ServerModel,
    Site,
    Switch,
    SwitchUplink,
    Vm,
)
from fuyun.store.models.base import Base


@dataclass(frozen=True)
class Resource:
    kind: str
    model: type[Base]
    public: bool = False  # readable by tenants
    filters: tuple[str, ...] = ()
    refs: dict[str, type[Base]] = field(default_factory=dict)  # filter/field -> referenced table
    mutable: tuple[str, ...] = ()
    dependents: tuple[tuple[type[Base], str, str], ...] = ()  # (table, column, what)
    prepare: Callable[[Session, dict[str, Any]], None] | None = None


def _prepare_host(session: Session, values: dict[str, Any]) -> None:
    """Copy capacity from the server model and position from the ToR."""
    tor = session.get(Switch, values["tor_id"])
    if tor is None or tor.role != SwitchRole.TOR.value:
        raise InvalidInput("tor must name a ToR switch", field="tor")
    model = session.get(ServerModel, values["server_model_id"])
    if model is None:
        raise InvalidInput("no such server model", field="server_model")
    values.update(
        site_id=tor.site_id,
        module_id=tor.module_id,
        tor_port=_tor_port(session, tor, values.get("tor_port")),
        vcpus=model.cores,
        ram_mb=model.ram_mb,
        disk_gb=model.disk_gb,
        nic_mbps=model.nic_count * model.nic_speed_mbps,
    )


def _tor_port(
    session: Session, tor: Switch, wanted: str | None, host_id: uuid.UUID | None = None
) -> str:
    """``wanted`` if no other host of the ToR is cabled there; else the lowest free port.

    Stored, not derived on each compile: a derived index would move every later
    host's trunk to another interface when a host is added or removed.
    """
    taken = set(
        session.scalars(
            select(Host.tor_port).where(
                Host.tor_id == tor.id, Host.tor_port.is_not(None), Host.id != host_id
            )
        )
    )
    if wanted is None:
        return next(derive(tor.platform, 1, taken))
    if wanted in taken:
        raise Conflict(f"{tor.name} {wanted} is cabled to another host", field="tor_port")
    return wanted


def _prepare_switch(session: Session, values: dict[str, Any]) -> None:
    module = session.get(Module, values["module_id"])
    if module is None:
        raise InvalidInput("no such module", field="module")
    values["site_id"] = module.site_id


def _prepare_module_link(session: Session, values: dict[str, Any]) -> None:
    """Two distinct modules of one site: sites are joined by interconnects instead."""
    a = session.get(Module, values["module_a_id"])
    b = session.get(Module, values["module_b_id"])
    assert a is not None and b is not None  # resolved as references already
    if a.id == b.id:
        raise InvalidInput("a module link joins two distinct modules", field="module_b")
    if a.site_id != b.site_id:
        raise InvalidInput(
            f"modules {a.name} and {b.name} are in different sites; join sites with an "
            "interconnect",
            field="module_b",
        )


RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        Resource(
            "server-model",
            ServerModel,
            mutable=(),
            dependents=((Host, "server_model_id", "hosts"),),
        ),
        Resource(
            "flavor",
            Flavor,
            public=True,
            mutable=("bandwidth_mbps",),
            dependents=((Vm, "flavor_id", "VMs"),),
        ),
        Resource(
            "site",
            Site,
            mutable=("city", "description"),
            dependents=((Module, "site_id", "modules"),),
        ),
        Resource(
            "interconnect",
            Interconnect,
            filters=("site",),
            refs={"site_a": Site, "site_b": Site, "site": Site},
            mutable=("l2_extension", "bandwidth_mbps"),
        ),
        Resource(
            "module-link",
            ModuleLink,
            filters=("module",),
            refs={"module_a": Module, "module_b": Module, "module": Module},
            mutable=("l2_extension", "bandwidth_mbps"),
            prepare=_prepare_module_link,
        ),
        Resource(
            "module",
            Module,
            filters=("site", "fabric_kind"),
            refs={"site": Site},
            mutable=("enforcement_point",),
            dependents=((Switch, "module_id", "switches"),),
        ),
        Resource(
            "switch",
            Switch,
            filters=("site", "module", "role", "platform"),
            refs={"site": Site, "module": Module},
            mutable=(
                "mgmt_address",
                "mac_capacity",
                "arp_capacity",
                "vlan_capacity",
                "acl_capacity",
                "uplink_mbps",
            ),
            dependents=((Host, "tor_id", "hosts"),),
            prepare=_prepare_switch,
        ),
        Resource(
            "host",
            Host,
            filters=("site", "module", "tor", "state", "hypervisor", "vswitch"),
            refs={"site": Site, "module": Module, "tor": Switch, "server_model": ServerModel},
            mutable=("mgmt_address", "tor_port", "max_vms", "hypervisor", "vswitch"),
            prepare=_prepare_host,
        ),
    )
}


def _resource(kind: str, principal: Principal, *, write: bool = False) -> Resource:
    res = RESOURCES[kind]
    if write:
        principal.require_operator()
    elif not res.public and not principal.sees_everything:
        raise Forbidden(f"only operators may see {kind}s")
    return res


def resolve_ref(
    session: Session, model: type[Base], value: str | uuid.UUID, field: str
) -> uuid.UUID:
    """Accept a reference by UUID or by name; answer with the id or a 4xx naming ``field``."""
    try:
        ref_id = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        ref_id = session.scalar(select(model.id).where(model.name == value))  # type: ignore[attr-defined]
    else:
        ref_id = session.scalar(select(model.id).where(model.id == ref_id))  # type: ignore[attr-defined]
    if ref_id is None:
        raise InvalidInput(f"no {field} '{value}'", field=field)
    return ref_id


def list_objects(
    db: Database,
    principal: Principal,
    kind: str,
    *,
    filters: dict[str, Any] | None = None,
    name_prefix: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Any]:
    res = _resource(kind, principal)
    model: Any = res.model
    stmt = select(model)
    with db.read_session() as session:
        for key, value in (filters or {}).items():
            if value is None or value == "":
                continue
            if key not in res.filters:
                raise InvalidInput(f"cannot filter {kind}s by {key}", field=key)
            if key in res.refs:
                ref_id = resolve_ref(session, res.refs[key], value, key)
                if kind == "interconnect" and key == "site":
                    stmt = stmt.where(or_(model.site_a_id == ref_id, model.site_b_id == ref_id))
                elif kind == "module-link" and key == "module":
                    stmt = stmt.where(or_(model.module_a_id == ref_id, model.module_b_id == ref_id))
                else:
                    stmt = stmt.where(getattr(model, f"{key}_id") == ref_id)
            else:
                stmt = stmt.where(getattr(model, key) == str(value))
        if name_prefix:
            stmt = stmt.where(prefix_filter(model.name, name_prefix))
        return paginate(
            session, stmt, sort=model.name, id_column=model.id, limit=limit, cursor=cursor
        )


def get_object(db: Database, principal: Principal, kind: str, object_id: uuid.UUID) -> Any:
    res = _resource(kind, principal)
    with db.read_session() as session:
        obj = session.get(res.model, object_id)
        if obj is None:
            raise NotFound(f"no such {kind}", field="id")
        return obj


def count_objects(db: Database, principal: Principal, kind: str) -> int:
    res = _resource(kind, principal)
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(res.model)) or 0


def create_object(db: Database, principal: Principal, kind: str, values: dict[str, Any]) -> Any:
    res = _resource(kind, principal, write=True)
    with mutation(db, principal, f"{kind}.create", kind) as m:
        values = dict(values)
        for ref, model in res.refs.items():
            if ref in values:
                values[f"{ref}_id"] = resolve_ref(m.session, model, values.pop(ref), ref)
        uplinks = values.pop("uplinks", None)
        if res.prepare:
            res.prepare(m.session, values)
        obj = res.model(**values)
        m.session.add(obj)
        _flush(m.session, kind)
        if uplinks:
            _set_uplinks(m.session, obj, uplinks)  # type: ignore[arg-type]
        m.object_id = str(obj.id)  # type: ignore[attr-defined]
        m.tenant_id = None
        m.detail = {"name": getattr(obj, "name", None)}
        return obj


def _set_uplinks(session: Session, tor: Switch, uplinks: Iterable[str]) -> None:
    for name in uplinks:
        agg_id = resolve_ref(session, Switch, name, "uplinks")
        agg = session.get(Switch, agg_id)
        if (
            agg is None
            or agg.role != SwitchRole.AGGREGATION.value
            or agg.module_id != tor.module_id
        ):
            raise InvalidInput(
                f"uplink '{name}' is not an aggregation switch of this module", field="uplinks"
            )
        session.add(SwitchUplink(switch_id=tor.id, uplink_id=agg_id))
    _flush(session, "switch")


def _flush(session: Session, kind: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"{kind} clashes with an existing one (name or address taken)", field="name"
        ) from exc


def update_object(
    db: Database, principal: Principal, kind: str, object_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    res = _resource(kind, principal, write=True)
    with mutation(db, principal, f"{kind}.update", kind, object_id=object_id) as m:
        m.tenant_id = None
        obj = m.session.get(res.model, object_id)
        if obj is None:
            raise NotFound(f"no such {kind}", field="id")
        recabled = False
        moved_from = (
            obj.enforcement_point
            if isinstance(obj, Module)
            and values.get("enforcement_point") not in (None, obj.enforcement_point)
            else None
        )
        for key, value in values.items():
            if key not in res.mutable:
                raise InvalidInput(f"{key} of a {kind} cannot be changed", field=key)
            _check_not_below_use(obj, key, value)
            if isinstance(obj, Host) and key == "tor_port" and value != obj.tor_port:
                tor = m.session.get_one(Switch, obj.tor_id)
                value = _tor_port(m.session, tor, value, obj.id)
                recabled = True
            setattr(obj, key, value)
        _flush(m.session, kind)
        m.detail = {"changed": sorted(values)}
        if recabled:  # the ToR's trunk for this host moves to the new interface
            recompile(m.session, {obj.id})
        if moved_from is not None:  # enforce at the new point, withdraw from the old
            m.detail["devices_changed"] = rehome(m.session, obj.id, moved_from).changed
        return obj


_IN_USE = {
    "mac_capacity": "used_mac",
    "arp_capacity": "used_arp",
    "vlan_capacity": "used_vlans",
    "acl_capacity": "used_acl",
    "max_vms": "vm_count",
}


def _check_not_below_use(obj: Any, key: str, value: Any) -> None:
    used_attr = _IN_USE.get(key)
    if used_attr is None or value is None:
        return
    used = getattr(obj, used_attr)
    if value < used:
        raise InvalidInput(f"{key} {value} is below what is in use ({used})", field=key)


def delete_object(db: Database, principal: Principal, kind: str, object_id: uuid.UUID) -> None:
    """Refused while anything still depends on the object, naming what does."""
    res = _resource(kind, principal, write=True)
    with mutation(db, principal, f"{kind}.delete", kind, object_id=object_id) as m:
        m.tenant_id = None
        obj = m.session.get(res.model, object_id)
        if obj is None:
            raise NotFound(f"no such {kind}", field="id")
        for table, column, what in res.dependents:
            n = m.session.scalar(
                select(func.count()).select_from(table).where(getattr(table, column) == object_id)
            )
            if n:
                raise Conflict(
                    f"{kind} '{getattr(obj, 'name', object_id)}' still has {n} {what}", field="id"
                )
        if isinstance(obj, Host):
            _refuse_if_vms(m.session, obj)
        m.detail = {"name": getattr(obj, "name", None)}
        m.session.delete(obj)


def _refuse_if_vms(session: Session, host: Host) -> None:
    n = session.scalar(
        select(func.count())
        .select_from(Vm)
        .where(Vm.host_id == host.id, Vm.state != VmState.DELETED.value)
    )
    if n:
        raise Conflict(f"host '{host.name}' still runs {n} VMs", field="id")


def set_host_state(
    db: Database, principal: Principal, host_id: uuid.UUID, state: HostState
) -> tuple[Host, list[Vm]]:
    """Put a host into maintenance (no new placements) or back; lists what must move."""
    principal.require_operator()
    with mutation(db, principal, "host.set-state", "host", object_id=host_id) as m:
        m.tenant_id = None
        host = m.session.get(Host, host_id)
        if host is None:
            raise NotFound("no such host", field="id")
        previous = host.state
        host.state = state.value
        vms = list(
            m.session.scalars(
                select(Vm)
                .where(Vm.host_id == host_id, Vm.state != VmState.DELETED.value)
                .order_by(Vm.name)
            )
        )
        m.detail = {"from": previous, "to": state.value, "vms_to_move": len(vms)}
        return host, vms


def names_of(
    db: Database, model: type[Base], ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    """Names for a page's worth of ids, in one query."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    with db.read_session() as session:
        rows = session.execute(select(model.id, model.name).where(model.id.in_(wanted)))  # type: ignore[attr-defined]
        return {row[0]: row[1] for row in rows}
