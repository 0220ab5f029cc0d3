"""DHCP and DNS for tenant networks, derived from IPAM on demand.

A network's :class:`~fuyun.netsvc.scope.DhcpScope` is computed from the store at
the network's ``generation``, which every port, subnet or DHCP change bumps. Nothing
is written on the VM-create path: an agent that serves the network's DHCP asks for
the scope when the generation moves (see docs/network-services.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from fuyun.config import Settings
from fuyun.ipam.addresses import to_address, unpack
from fuyun.netsvc.scope import DhcpScope, SubnetScope, reservation_names, zone_of
from fuyun.services.networks import visible_network
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import IpAllocation, Port, Segment, Subnet, Tenant, Vm


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
        tenant = s.get(Tenant, network.tenant_id)
        assert tenant is not None
        vlans = sorted(s.scalars(select(Segment.vlan).where(Segment.network_id == network.id)))
        subnets = []
        for sub in s.scalars(
            select(Subnet).where(Subnet.network_id == network.id).order_by(Subnet.cidr)
        ):
            gateway = (
                None if sub.gateway is None else str(to_address(unpack(sub.gateway), sub.family))
            )
            subnets.append(SubnetScope(sub.cidr, gateway))
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
        return ScopeAtGeneration(network.generation, scope)
