"""Tenant networks: a VLAN (or several), subnets in the tenant's VRF, a span of ToRs.

A network lives in one module, which lends it VLANs from its pool. Its first
subnet is given (``cidr``) or carved (``prefix_len``) from the VRF's pools. When a
subnet fills, the network grows by its chosen strategy: ``secondary`` (another
subnet on the same VLAN and gateway segment), ``new-vlan`` (another VLAN with its
own subnet, routed in the VRF) or ``refuse``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.errors import Conflict, InvalidInput, NotFound
from fuyun.ipam.addresses import IPNetwork, pack, parse_address, parse_network, span_of
from fuyun.ipam.subnets import layout
from fuyun.services import address_plan as plan
from fuyun.services.addressing import drop_subnet_state, seed_free_ranges
from fuyun.services.audit import mutation
from fuyun.services.enforcement import hosts_of_networks, recompile
from fuyun.services.inventory import resolve_ref
from fuyun.services.pagination import Page, paginate, prefix_filter
from fuyun.services.principal import Principal
from fuyun.services.route_leaks import drop_network_leaks, routing_hosts
from fuyun.store.engine import Database
from fuyun.store.models import (
    Module,
    Network,
    Port,
    Prefix,
    Segment,
    Site,
    Subnet,
    Tenant,
    VlanAllocation,
    VlanPool,
    Vrf,
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
CAPACITY_CAP = 2**62


class Growth(StrEnum):
    SECONDARY = "secondary"
    NEW_VLAN = "new-vlan"
    REFUSE = "refuse"


@dataclass(frozen=True)
class NetworkRequest:
    name: str
    cidr: str | None = None
    prefix_len: int | None = None
    gateway: str | None = None
    growth: Growth = Growth.SECONDARY
    growth_prefix_len: int | None = None
    reserve_first: int = 0
    site: str | None = None
    module: str | None = None
    vlan: int | None = None
    pool: uuid.UUID | None = None
    vrf: str = plan.DEFAULT_VRF
    description: str = ""
    tenant_id: uuid.UUID | None = None
    dhcp: bool = True


@dataclass(frozen=True)
class Networking:
    db: Database
    settings: Settings


def visible_network(
    session: Session, principal: Principal, network_id: uuid.UUID, *, lock: bool = False
) -> Network:
    stmt = select(Network).where(Network.id == network_id)
    if lock:
        stmt = stmt.with_for_update(key_share=True)
    network = session.scalar(stmt)
    if network is None or not principal.may_see_tenant(network.tenant_id):
        raise NotFound("no such network", field="network_id")
    return network


def create_network(ctx: Networking, principal: Principal, req: NetworkRequest) -> Network:
    principal.require_write()
    tenant_id = req.tenant_id if principal.is_operator else principal.tenant_id
    if tenant_id is None:
        raise InvalidInput(
            "tenant_id is required when an operator creates a network", field="tenant_id"
        )
    with mutation(ctx.db, principal, "network.create", "network", tenant_id=tenant_id) as m:
        s = m.session
        if not NAME.match(req.name):
            raise InvalidInput("name must be 1-63 letters, digits or ._-", field="name")
        if s.get(Tenant, tenant_id) is None:
            raise NotFound("no such tenant", field="tenant_id")
        if (
            s.scalar(
                select(Network.id).where(Network.tenant_id == tenant_id, Network.name == req.name)
            )
            is not None
        ):
            raise Conflict(f"network '{req.name}' exists", field="name")
        if req.growth_prefix_len is not None and not 8 <= req.growth_prefix_len <= 128:
            raise InvalidInput("growth_prefix_len must be 8-128", field="growth_prefix_len")
        module = _module_for(s, principal, req)
        vrf = plan.ensure_vrf(s, ctx.settings, tenant_id, req.vrf)
        plan.lock_vrf(s, vrf.id)
        network = Network(
            tenant_id=tenant_id,
            vrf_id=vrf.id,
            module_id=module.id,
            name=req.name,
            description=req.description,
            growth=req.growth.value,
            growth_prefix_len=req.growth_prefix_len,
            reserve_first=req.reserve_first,
            dhcp=req.dhcp,
        )
        s.add(network)
        s.flush()
        segment = add_segment(s, ctx.settings, network, module, vlan=req.vlan)
        if req.cidr is not None:
            net = parse_network(req.cidr)
        else:
            length = req.prefix_len or ctx.settings.default_prefix_len_v4
            family = 4 if length <= 32 else 6
            chosen = s.get(Prefix, req.pool) if req.pool is not None else None
            if chosen is not None:
                family = chosen.family
            net, _ = plan.carve(s, vrf, family, length, req.pool)
        add_subnet(s, network, segment, net, primary=True, gateway=req.gateway, pool_id=req.pool)
        m.object_id = str(network.id)
        m.detail = {
            "name": req.name,
            "vlan": segment.vlan,
            "cidr": str(net),
            "module": module.name,
            "growth": req.growth.value,
        }
        return network


def _module_for(s: Session, principal: Principal, req: NetworkRequest) -> Module:
    if req.module is not None:
        if not principal.is_operator:
            raise InvalidInput(
                "only operators choose a module; tenants may choose a site", field="module"
            )
        module = s.get(Module, resolve_ref(s, Module, req.module, "module"))
        assert module is not None
        return module
    site_id = resolve_ref(s, Site, req.site, "site") if req.site is not None else None
    return plan.choose_module(s, site_id)


def add_segment(
    s: Session, settings: Settings, network: Network, module: Module, *, vlan: int | None = None
) -> Segment:
    pool = plan.ensure_vlan_pool(s, settings, module)
    index = (
        s.scalar(select(func.max(Segment.index)).where(Segment.network_id == network.id)) or 0
    ) + 1
    segment = Segment(network_id=network.id, index=index, vlan=0, pool_id=pool.id)
    s.add(segment)
    s.flush()
    segment.vlan = plan.allocate_vlan(s, pool, segment.id, vlan)
    s.flush()
    return segment


def add_subnet(
    s: Session,
    network: Network,
    segment: Segment,
    net: IPNetwork,
    *,
    primary: bool,
    gateway: str | None = None,
    pool_id: uuid.UUID | None = None,
) -> Subnet:
    """Validate, lay out and record a subnet; carve-outs are registered under their pool."""
    plan.lock_vrf(s, network.vrf_id)
    plan.check_no_overlap(s, network.vrf_id, net)
    gw = parse_address(gateway, "gateway") if gateway else None
    sub_layout = layout(net, gateway=gw, reserve_first=network.reserve_first)
    if sub_layout.capacity <= 0:
        raise InvalidInput(f"{net} leaves no address to allocate", field="cidr")
    span = span_of(net)
    subnet = Subnet(
        network_id=network.id,
        segment_id=segment.id,
        vrf_id=network.vrf_id,
        cidr=str(net),
        family=net.version,
        first=pack(span.first),
        last=pack(span.last),
        prefix_len=net.prefixlen,
        gateway=None if sub_layout.gateway is None else pack(sub_layout.gateway),
        primary=primary,
        reserve_first=network.reserve_first,
        capacity=min(sub_layout.capacity, CAPACITY_CAP),
    )
    s.add(subnet)
    s.flush()
    seed_free_ranges(s, subnet, sub_layout)
    pool = s.get(Prefix, pool_id) if pool_id else plan.enclosing_pool(s, network.vrf_id, net)
    if pool is not None:
        plan.record_carve(s, net, pool, subnet.id)
    network.generation += 1
    s.flush()
    if subnet.gateway is not None:
        # A new gateway is a DHCP service the network's ports may ask, an SVI their ToR
        # routes and, through an approved route leak, a prefix the peer VRF's ToRs
        # route: those devices learn it, in one recompile.
        recompile(s, hosts_of_networks(s, [network.id]) | routing_hosts(s, network.id))
    return subnet


def add_subnet_to(
    ctx: Networking,
    principal: Principal,
    network_id: uuid.UUID,
    *,
    cidr: str | None,
    prefix_len: int | None,
    gateway: str | None,
    new_vlan: bool = False,
) -> Subnet:
    """Add a subnet by hand: a secondary range, an IPv6 range, or one on a new VLAN."""
    principal.require_write()
    with mutation(ctx.db, principal, "subnet.create", "subnet") as m:
        s = m.session
        network = visible_network(s, principal, network_id, lock=True)
        m.tenant_id = network.tenant_id
        module = s.get(Module, network.module_id)
        assert module is not None
        segment = (
            add_segment(s, ctx.settings, network, module)
            if new_vlan
            else latest_segment(s, network)
        )
        vrf = s.get(Vrf, network.vrf_id)
        assert vrf is not None
        if cidr is not None:
            net = parse_network(cidr)
        elif prefix_len is not None:
            net, _ = plan.carve(s, vrf, 4 if prefix_len <= 32 else 6, prefix_len)
        else:
            raise InvalidInput("give cidr or prefix_len", field="cidr")
        has_family = s.scalar(
            select(Subnet.id)
            .where(Subnet.segment_id == segment.id, Subnet.family == net.version)
            .limit(1)
        )
        subnet = add_subnet(s, network, segment, net, primary=has_family is None, gateway=gateway)
        m.object_id = str(subnet.id)
        m.detail = {"network": network.name, "cidr": str(net), "vlan": segment.vlan}
        return subnet


def latest_segment(s: Session, network: Network) -> Segment:
    segment = s.scalar(
        select(Segment)
        .where(Segment.network_id == network.id)
        .order_by(Segment.index.desc())
        .limit(1)
    )
    assert segment is not None
    return segment


def get_network(db: Database, principal: Principal, network_id: uuid.UUID) -> Network:
    with db.read_session() as s:
        return visible_network(s, principal, network_id)


def list_networks(
    db: Database,
    principal: Principal,
    *,
    name_prefix: str | None = None,
    tenant_id: uuid.UUID | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Network]:
    stmt = principal.scope(select(Network), Network.tenant_id)
    if name_prefix:
        stmt = stmt.where(prefix_filter(Network.name, name_prefix))
    if tenant_id is not None:
        stmt = stmt.where(Network.tenant_id == tenant_id)
    with db.read_session() as s:
        return paginate(
            s, stmt, sort=Network.name, id_column=Network.id, limit=limit, cursor=cursor
        )


def update_network(
    ctx: Networking,
    principal: Principal,
    network_id: uuid.UUID,
    *,
    description: str | None = None,
    growth: Growth | None = None,
    growth_prefix_len: int | None = None,
    dhcp: bool | None = None,
) -> Network:
    principal.require_write()
    with mutation(ctx.db, principal, "network.update", "network", object_id=network_id) as m:
        network = visible_network(m.session, principal, network_id, lock=True)
        m.tenant_id = network.tenant_id
        if description is not None:
            network.description = description
        if growth is not None:
            network.growth = growth.value
        if growth_prefix_len is not None:
            network.growth_prefix_len = growth_prefix_len
        if dhcp is not None and dhcp != network.dhcp:
            network.dhcp = dhcp
            network.generation += 1  # the network's DHCP scope changes
            # Every port's binding names the service it may ask, or none.
            m.session.flush()
            recompile(m.session, hosts_of_networks(m.session, [network.id]))
        m.detail = {
            "growth": network.growth,
            "growth_prefix_len": network.growth_prefix_len,
            "dhcp": network.dhcp,
        }
        return network


def delete_network(ctx: Networking, principal: Principal, network_id: uuid.UUID) -> None:
    """Refused while any port is on the network."""
    principal.require_write()
    with mutation(ctx.db, principal, "network.delete", "network", object_id=network_id) as m:
        s = m.session
        network = visible_network(s, principal, network_id, lock=True)
        m.tenant_id = network.tenant_id
        ports = s.scalar(
            select(func.count()).select_from(Port).where(Port.network_id == network.id)
        )
        if ports:
            raise Conflict(
                f"network '{network.name}' still has {ports} ports; delete them first",
                field="network_id",
                code="network_in_use",
            )
        for subnet_id in s.scalars(select(Subnet.id).where(Subnet.network_id == network.id)):
            drop_subnet_state(s, subnet_id)
        m.detail = {"name": network.name}
        if leaks := drop_network_leaks(s, network.id):
            m.detail["route_leaks_revoked"] = leaks
        s.delete(network)


def subnets_of(db: Database, principal: Principal, network_id: uuid.UUID) -> list[Subnet]:
    with db.read_session() as s:
        visible_network(s, principal, network_id)
        return list(
            s.scalars(
                select(Subnet)
                .where(Subnet.network_id == network_id)
                .order_by(Subnet.created_at, Subnet.cidr)
            )
        )


def segments_of(db: Database, principal: Principal, network_id: uuid.UUID) -> list[Segment]:
    with db.read_session() as s:
        visible_network(s, principal, network_id)
        return list(
            s.scalars(
                select(Segment).where(Segment.network_id == network_id).order_by(Segment.index)
            )
        )


def list_vlan_pools(db: Database, principal: Principal) -> list[VlanPool]:
    if not principal.sees_everything:
        principal.require_operator()
    with db.read_session() as s:
        return list(s.scalars(select(VlanPool).order_by(VlanPool.name)))


def update_vlan_pool(
    db: Database,
    principal: Principal,
    pool_id: uuid.UUID,
    *,
    vlan_min: int | None,
    vlan_max: int | None,
    reserved: list[int] | None,
) -> VlanPool:
    """Change a pool's range or reserved ids; refused if a VLAN in use would fall outside."""
    principal.require_operator()
    with mutation(db, principal, "vlan-pool.update", "vlan-pool", object_id=pool_id) as m:
        m.tenant_id = None
        pool = m.session.get(VlanPool, pool_id, with_for_update=True)
        if pool is None:
            raise NotFound("no such VLAN pool", field="id")
        lo = pool.vlan_min if vlan_min is None else vlan_min
        hi = pool.vlan_max if vlan_max is None else vlan_max
        res = pool.reserved if reserved is None else sorted(set(reserved))
        if not 1 <= lo <= hi <= 4094:
            raise InvalidInput("need 1 <= vlan_min <= vlan_max <= 4094", field="vlan_min")
        in_use = set(
            m.session.scalars(select(VlanAllocation.vlan).where(VlanAllocation.pool_id == pool.id))
        )
        stranded = sorted(v for v in in_use if not lo <= v <= hi or v in res)
        if stranded:
            raise Conflict(
                f"VLANs in use would be outside the pool or reserved: {stranded[:10]}",
                field="vlan_min",
            )
        pool.vlan_min, pool.vlan_max, pool.reserved = lo, hi, res
        m.detail = {"vlan_min": lo, "vlan_max": hi, "reserved": res}
        return pool
