"""DHCP and DNS for tenant networks, derived from IPAM on demand.

A network's :class:`~fuyun.netsvc.scope.DhcpScope` is computed from the store at
the network's ``generation``, which every port, subnet or DHCP change bumps. Nothing
is written on the VM-create path: a network node that serves the network asks for
the network's :class:`~fuyun.netsvc.service.NetworkService` (router interfaces per
segment and the scope) only when the generation moves (see docs/network-services.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.errors import NotFound
from fuyun.ipam.addresses import to_address, unpack
from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.scope import DhcpScope, SubnetScope, reservation_names, zone_of
from fuyun.netsvc.service import NetworkService, Segment
from fuyun.services.leak_paths import approved_paths
from fuyun.services.networks import visible_network
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import IpAllocation, Module, Network, Port, Subnet, Tenant, Vm
from fuyun.store.models import Segment as SegmentRow


@dataclass(frozen=True)
class ScopeAtGeneration:
    generation: int
    scope: DhcpScope


def dhcp_scope(
    db: Database, settings: Settings, principal: Principal, network_id: uuid.UUID
) -> ScopeAtGeneration:
    """Exactly the reservations IPAM made on the network, with names, gateway and MTU."""
    with db.read_session() as s:
        network = visible_network(s, principal, network_id)
        scope, _ = _scope(s, settings, network)
        return ScopeAtGeneration(network.generation, scope)


def network_generations(db: Database, modules: set[str] | None = None) -> dict[str, int]:
    """Network id -> generation of every network (of ``modules``, when given): what a
    network node compares with what it runs, one cheap query per pass."""
    stmt = select(Network.id, Network.generation)
    if modules is not None:
        stmt = stmt.join(Module, Module.id == Network.module_id).where(Module.name.in_(modules))
    with db.read_session() as s:
        return {str(i): g for i, g in s.execute(stmt)}


def network_service(db: Database, settings: Settings, network_id: str) -> NetworkService:
    """What the network node runs for the network now: its router interfaces and DHCP."""
    with db.read_session() as s:
        network = s.get(Network, uuid.UUID(network_id))
        if network is None:
            raise NotFound("no such network", field="network_id")
        module = s.get(Module, network.module_id)
        assert module is not None
        scope, by_segment = _scope(s, settings, network)
        segments = tuple(
            Segment(vlan, tuple(by_segment.get(seg_id, ())))
            for seg_id, vlan in s.execute(
                select(SegmentRow.id, SegmentRow.vlan)
                .where(SegmentRow.network_id == network.id)
                .order_by(SegmentRow.index)
            )
        )
        return NetworkService(
            network_id=str(network.id),
            generation=network.generation,
            vrf_id=str(network.vrf_id),
            module=module.name,
            segments=segments,
            scope=scope,
        )


def _scope(
    s: Session, settings: Settings, network: Network
) -> tuple[DhcpScope, dict[uuid.UUID, list[SubnetScope]]]:
    """The network's scope, and its subnets by segment (the router's interfaces)."""
    tenant = s.get(Tenant, network.tenant_id)
    assert tenant is not None
    vlans = sorted(s.scalars(select(SegmentRow.vlan).where(SegmentRow.network_id == network.id)))
    subnets = []
    by_segment: dict[uuid.UUID, list[SubnetScope]] = {}
    for sub in s.scalars(
        select(Subnet).where(Subnet.network_id == network.id).order_by(Subnet.cidr)
    ):
        gateway = None if sub.gateway is None else str(to_address(unpack(sub.gateway), sub.family))
        subnets.append(SubnetScope(sub.cidr, gateway))
        by_segment.setdefault(sub.segment_id, []).append(subnets[-1])
    rows = s.execute(
        select(Port.mac, Port.name, Vm.name, IpAllocation.address, IpAllocation.family)
        .join(IpAllocation, IpAllocation.port_id == Port.id)
        .outerjoin(Vm, Vm.id == Port.vm_id)
        .where(Port.network_id == network.id, IpAllocation.state == "allocated")
    ).all()
    reservations = reservation_names(
        [
            (mac, str(to_address(unpack(address), family)), vm_name or port_name or mac)
            for mac, port_name, vm_name, address, family in rows
        ]
    )
    v4_gateway = next((x.gateway for x in subnets if x.gateway and ":" not in x.gateway), None)
    scope = DhcpScope(
        network_id=str(network.id),
        network=network.name,
        tenant=tenant.name,
        vlans=tuple(vlans),
        zone=zone_of(network.name, tenant.name, settings.dns_zone),
        mtu=settings.network_mtu,
        enabled=network.dhcp,
        subnets=tuple(subnets),
        reservations=tuple(reservations) if network.dhcp else (),
        dns_server=v4_gateway,
    )
    return scope, by_segment


def report_network_services(db: Database, generations: dict[str, int]) -> None:
    """The network node enforces these networks' ``generation``s (routers, DHCP, DNS):
    recorded per network, never backwards, so ``GET /networks/{id}`` shows the lag."""
    if not generations:
        return
    with db.write_session() as s:
        for network_id, generation in generations.items():
            s.execute(
                update(Network)
                .where(
                    Network.id == uuid.UUID(network_id),
                    Network.services_applied_generation < generation,
                )
                .values(services_applied_generation=generation, updated_at=Network.updated_at)
            )


def leak_paths(db: Database, modules: set[str] | None = None) -> dict[str, LeakPath]:
    """Approved route leaks a network node of ``modules`` routes (either side there)."""
    with db.read_session() as s:
        module_ids = None
        if modules is not None:
            module_ids = set(s.scalars(select(Module.id).where(Module.name.in_(modules))))
        return {p.leak_id: p for p in approved_paths(s, modules=module_ids)}
