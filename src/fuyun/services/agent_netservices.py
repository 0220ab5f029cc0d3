"""What a network node reads over the API: its modules' network services and route leaks.

A network node that has no database credentials (``fuyun agent --api … --lab``)
reads the same values :class:`~fuyun.agent.netservices.StoreNetworkServices` gives —
network generations, a network's :class:`~fuyun.netsvc.service.NetworkService`, the
approved :class:`~fuyun.netsvc.leaks.LeakPath` values — and reports the generations
it runs. A host's agent credential reads only the networks of its own host's module
(the node on that host serves that module); an operator's token reads any module.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from fuyun.config import Settings
from fuyun.domain.errors import Forbidden, NotFound
from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.service import NetworkService
from fuyun.services.agents import AgentPrincipal, resolve_host
from fuyun.services.netservices import (
    leak_paths,
    network_generations,
    network_service,
    report_network_services,
)
from fuyun.store.engine import Database
from fuyun.store.models import Module, Network


def modules_for(db: Database, agent: AgentPrincipal, host_ref: str, modules: list[str]) -> set[str]:
    """The modules the caller may read through ``host_ref``: its host's module by default."""
    host = resolve_host(db, agent, host_ref)
    with db.read_session() as s:
        own = s.scalar(select(Module.name).where(Module.id == host.module_id))
        known = set(s.scalars(select(Module.name).where(Module.name.in_(modules))))
    if not modules:
        return {own or ""}
    if set(modules) - known:
        raise NotFound(f"no module {sorted(set(modules) - known)[0]}", field="module")
    if agent.operator is None and set(modules) != {own}:
        raise Forbidden(f"this credential reads module {own} only", field="module")
    return set(modules)


def generations(db: Database, modules: set[str]) -> dict[str, int]:
    return network_generations(db, modules)


def service(
    db: Database, settings: Settings, modules: set[str], network_id: uuid.UUID
) -> NetworkService:
    """The network's service, if it is in ``modules`` (else 404, as for an unknown one)."""
    svc = network_service(db, settings, str(network_id))
    if svc.module not in modules:
        raise NotFound("no such network", field="network_id")
    return svc


def leaks(db: Database, modules: set[str]) -> list[LeakPath]:
    return list(leak_paths(db, modules).values())


def report(db: Database, modules: set[str], applied: dict[uuid.UUID, int]) -> int:
    """Record what the node runs for networks of ``modules``; others are ignored."""
    with db.read_session() as s:
        mine = set(
            s.scalars(
                select(Network.id)
                .join(Module, Module.id == Network.module_id)
                .where(Network.id.in_(list(applied)), Module.name.in_(modules))
            )
        )
    report_network_services(db, {str(k): g for k, g in applied.items() if k in mine})
    return len(mine)
