"""Networks, subnets, ports, VRFs, VLAN pools, address plan and utilization."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from fuyun.api import schemas_net as n
from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit
from fuyun.api.schemas import ListOf
from fuyun.ipam.addresses import to_address, unpack
from fuyun.services import netservices, networks, ports, prefixes, utilization
from fuyun.services.networks import NetworkRequest
from fuyun.services.ports import PortRequest, PortView
from fuyun.services.principal import Principal
from fuyun.store.models import Segment, SpanMember, Subnet, Switch, Vrf

router = APIRouter(responses=ERRORS)
DryRun = Annotated[bool, Query(description="answer what would change, change nothing")]


def _subnet(sub: Subnet, vlan: int) -> n.SubnetPublic:
    gw = None if sub.gateway is None else str(to_address(unpack(sub.gateway), sub.family))
    return n.SubnetPublic(
        id=sub.id,
        network_id=sub.network_id,
        cidr=sub.cidr,
        family=sub.family,
        gateway=gw,
        vlan=vlan,
        primary=sub.primary,
        capacity=sub.capacity,
    )


def _detail(ctx: Ctx, who: Principal, network_id: uuid.UUID) -> n.NetworkDetail:
    network = networks.get_network(ctx.db, who, network_id)
    segments = networks.segments_of(ctx.db, who, network_id)
    vlans = {seg.id: seg.vlan for seg in segments}
    subnets = networks.subnets_of(ctx.db, who, network_id)
    span: list[str] = []
    if who.sees_everything:
        with ctx.db.read_session() as s:
            span = list(
                s.scalars(
                    select(Switch.name)
                    .join(SpanMember, SpanMember.switch_id == Switch.id)
                    .join(Segment, Segment.id == SpanMember.segment_id)
                    .where(Segment.network_id == network_id)
                    .order_by(Switch.name)
                )
            )
    base = n.NetworkPublic.model_validate(network).model_dump()
    return n.NetworkDetail(
        **base,
        vlans=[seg.vlan for seg in segments],
        subnets=[_subnet(x, vlans[x.segment_id]) for x in subnets],
        span=span,
    )


def _port(view: PortView, who: Principal, dry_run: bool = False) -> n.PortPublic:
    return n.PortPublic(
        id=view.id,
        tenant_id=view.tenant_id,
        network_id=view.network_id,
        vlan=view.vlan,
        name=view.name,
        mac=view.mac,
        ips=view.ips,
        vm_id=view.vm_id,
        host_id=view.host_id if who.sees_everything else None,
        grew=view.grew,
        l2=[
            n.TableChangePublic(
                switch=c.switch,
                table=c.table,
                used=c.used,
                after=c.after,
                capacity=c.capacity,
                fits=c.fits,
            )
            for c in view.l2
        ]
        if who.sees_everything
        else [],
        dry_run=dry_run,
    )


@router.get("/networks", response_model=ListOf[n.NetworkPublic], tags=["networks"])
def list_networks(
    ctx: Ctx,
    who: Caller,
    name_prefix: Annotated[str | None, Query(max_length=64)] = None,
    tenant_id: uuid.UUID | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict:
    page = networks.list_networks(
        ctx.db, who, name_prefix=name_prefix, tenant_id=tenant_id, limit=limit, cursor=cursor
    )
    return {
        "items": [n.NetworkPublic.model_validate(x) for x in page.items],
        "next_cursor": page.next_cursor,
    }


@router.post(
    "/networks",
    response_model=n.NetworkDetail,
    tags=["networks"],
    status_code=status.HTTP_201_CREATED,
)
def create_network(ctx: Ctx, who: Caller, body: n.NetworkCreate) -> n.NetworkDetail:
    """Create a tenant network: a VLAN from its module's pool and a primary subnet."""
    network = networks.create_network(
        ctx.networking,
        who,
        NetworkRequest(
            name=body.name,
            cidr=body.cidr,
            prefix_len=body.prefix_len,
            gateway=body.gateway,
            growth=body.growth,
            growth_prefix_len=body.growth_prefix_len,
            reserve_first=body.reserve_first,
            site=body.site,
            module=body.module,
            vlan=body.vlan,
            pool=body.pool,
            vrf=body.vrf,
            description=body.description,
            tenant_id=body.tenant_id,
            dhcp=body.dhcp,
        ),
    )
    return _detail(ctx, who, network.id)


@router.get("/networks/{network_id}", response_model=n.NetworkDetail, tags=["networks"])
def get_network(ctx: Ctx, who: Caller, network_id: uuid.UUID) -> n.NetworkDetail:
    return _detail(ctx, who, network_id)


@router.patch("/networks/{network_id}", response_model=n.NetworkDetail, tags=["networks"])
def update_network(
    ctx: Ctx, who: Caller, network_id: uuid.UUID, body: n.NetworkUpdate
) -> n.NetworkDetail:
    networks.update_network(
        ctx.networking,
        who,
        network_id,
        description=body.description,
        growth=body.growth,
        growth_prefix_len=body.growth_prefix_len,
        dhcp=body.dhcp,
    )
    return _detail(ctx, who, network_id)


@router.delete("/networks/{network_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["networks"])
def delete_network(ctx: Ctx, who: Caller, network_id: uuid.UUID) -> None:
    """Refused (409) while the network has ports."""
    networks.delete_network(ctx.networking, who, network_id)


@router.get("/networks/{network_id}/dhcp", response_model=n.DhcpScopePublic, tags=["networks"])
def network_dhcp(ctx: Ctx, who: Caller, network_id: uuid.UUID) -> n.DhcpScopePublic:
    """The network's DHCP reservations and DNS names: exactly what IPAM allocated.

    ``generation`` is the network's; it moves with every port, subnet or DHCP change,
    so a DHCP server re-reads the scope only when it moves.
    """
    at = netservices.dhcp_scope(ctx.db, ctx.settings, who, network_id)
    return n.DhcpScopePublic(
        generation=at.generation,
        **asdict(at.scope),
        names=at.scope.names(),
    )


@router.get("/networks/{network_id}/subnets", response_model=list[n.SubnetPublic], tags=["subnets"])
def network_subnets(ctx: Ctx, who: Caller, network_id: uuid.UUID) -> list[n.SubnetPublic]:
    vlans = {seg.id: seg.vlan for seg in networks.segments_of(ctx.db, who, network_id)}
    return [_subnet(x, vlans[x.segment_id]) for x in networks.subnets_of(ctx.db, who, network_id)]


@router.post(
    "/networks/{network_id}/subnets",
    response_model=n.SubnetPublic,
    tags=["subnets"],
    status_code=status.HTTP_201_CREATED,
)
def add_subnet(
    ctx: Ctx, who: Caller, network_id: uuid.UUID, body: n.SubnetCreate
) -> n.SubnetPublic:
    """Add a secondary (or IPv6) subnet by hand, optionally on a new VLAN."""
    sub = networks.add_subnet_to(
        ctx.networking,
        who,
        network_id,
        cidr=body.cidr,
        prefix_len=body.prefix_len,
        gateway=body.gateway,
        new_vlan=body.new_vlan,
    )
    vlans = {seg.id: seg.vlan for seg in networks.segments_of(ctx.db, who, network_id)}
    return _subnet(sub, vlans[sub.segment_id])


@router.get("/ports", response_model=ListOf[n.PortPublic], tags=["ports"])
def list_ports(
    ctx: Ctx,
    who: Caller,
    network_id: uuid.UUID | None = None,
    vm_id: uuid.UUID | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict:
    page = ports.list_ports(
        ctx.db, who, network_id=network_id, vm_id=vm_id, limit=limit, cursor=cursor
    )
    return {"items": [_port(v, who) for v in page.items], "next_cursor": page.next_cursor}


@router.post(
    "/ports", response_model=n.PortPublic, tags=["ports"], status_code=status.HTTP_201_CREATED
)
def create_port(ctx: Ctx, who: Caller, body: n.PortCreate, dry_run: DryRun = False) -> n.PortPublic:
    """Allocate a MAC and addresses on a network; bound to a host, claim its switch tables.

    With ``?dry_run=true`` nothing is kept: the answer says which address and MAC
    would be used and what every switch table would hold afterwards (``fits``).
    """
    view = ports.create_port(
        ctx.networking,
        who,
        PortRequest(
            network_id=body.network_id,
            name=body.name,
            ip=body.ip,
            mac=body.mac,
            host=body.host,
            security_groups=None if body.security_groups is None else tuple(body.security_groups),
        ),
        dry_run=dry_run,
    )
    return _port(view, who, dry_run)


@router.get("/ports/{port_id}", response_model=n.PortPublic, tags=["ports"])
def get_port(ctx: Ctx, who: Caller, port_id: uuid.UUID) -> n.PortPublic:
    return _port(ports.get_port(ctx.db, who, port_id), who)


@router.delete("/ports/{port_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["ports"])
def delete_port(ctx: Ctx, who: Caller, port_id: uuid.UUID) -> None:
    """Addresses go to quarantine; the span shrinks if this was the last port on a ToR."""
    ports.delete_port(ctx.networking, who, port_id)


@router.get("/vrfs", response_model=list[n.VrfPublic], tags=["vrfs"])
def list_vrfs(ctx: Ctx, who: Caller) -> list[n.VrfPublic]:
    with ctx.db.read_session() as s:
        rows = s.scalars(who.scope(select(Vrf), Vrf.tenant_id).order_by(Vrf.name))
        return [n.VrfPublic.model_validate(v) for v in rows]


@router.get("/vlan-pools", response_model=list[n.VlanPoolPublic], tags=["vlan-pools"])
def list_vlan_pools(ctx: Ctx, who: Caller) -> list[n.VlanPoolPublic]:
    return [n.VlanPoolPublic.model_validate(p) for p in networks.list_vlan_pools(ctx.db, who)]


@router.patch("/vlan-pools/{pool_id}", response_model=n.VlanPoolPublic, tags=["vlan-pools"])
def update_vlan_pool(
    ctx: Ctx, who: Caller, pool_id: uuid.UUID, body: n.VlanPoolUpdate
) -> n.VlanPoolPublic:
    return n.VlanPoolPublic.model_validate(
        networks.update_vlan_pool(
            ctx.db,
            who,
            pool_id,
            vlan_min=body.vlan_min,
            vlan_max=body.vlan_max,
            reserved=body.reserved,
        )
    )


@router.get("/prefixes", response_model=list[n.PrefixPublic], tags=["prefixes"])
def list_prefixes(
    ctx: Ctx,
    who: Caller,
    kind: Annotated[str | None, Query(pattern="^(aggregate|pool|carved)$")] = None,
) -> list[n.PrefixPublic]:
    return [
        n.PrefixPublic.model_validate(p) for p in prefixes.list_prefixes(ctx.db, who, kind=kind)
    ]


@router.post(
    "/prefixes",
    response_model=n.PrefixPublic,
    tags=["prefixes"],
    status_code=status.HTTP_201_CREATED,
)
def create_prefix(ctx: Ctx, who: Caller, body: n.PrefixCreate) -> n.PrefixPublic:
    """Operators: a site aggregate, or a module pool inside it."""
    return n.PrefixPublic.model_validate(
        prefixes.create_prefix(
            ctx.db,
            who,
            cidr=body.cidr,
            kind=body.kind,
            site=body.site,
            module=body.module,
            parent_id=body.parent_id,
            description=body.description,
        )
    )


@router.delete("/prefixes/{prefix_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["prefixes"])
def delete_prefix(ctx: Ctx, who: Caller, prefix_id: uuid.UUID) -> None:
    prefixes.delete_prefix(ctx.db, who, prefix_id)


@router.get("/utilization", response_model=n.UtilizationPublic, tags=["utilization"])
def get_utilization(
    ctx: Ctx,
    who: Caller,
    network_id: uuid.UUID | None = None,
    module: Annotated[str | None, Query(max_length=64)] = None,
) -> n.UtilizationPublic:
    """Allocated, free, quarantined and reserved addresses per subnet, network and module,
    and what growth cost (``boundary_loss``, ``growth_vlans``)."""
    rep = utilization.report(ctx.db, who, network_id=network_id, module=module)
    nets = [
        n.NetworkUsagePublic(
            id=u.id,
            name=u.name,
            tenant_id=u.tenant_id,
            module=u.module,
            growth=u.growth,
            vlans=u.vlans,
            allocated=u.allocated,
            free=u.free,
            quarantined=u.quarantined,
            reserved=u.reserved,
            boundary_loss=u.boundary_loss,
            growth_vlans=u.growth_vlans,
            subnets=[n.SubnetUsagePublic(**vars(s)) for s in u.subnets],
        )
        for u in rep.networks
    ]
    mods = [n.ModuleUsagePublic(**vars(m)) for m in rep.modules]
    return n.UtilizationPublic(networks=nets, modules=mods)
