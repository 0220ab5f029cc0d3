"""The address plan: VRFs, pools (site aggregate → module pool → carved subnets), VLAN pools.

Every tenant has a ``default`` VRF, made on first use with private pools from
the settings; operators lay out routable aggregates and module pools in the
global plan (no VRF). Subnets carved from a pool are recorded as its children, so
two carve-outs of one pool never overlap, whichever VRF they end up in.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.errors import CapacityExhausted, Conflict, InvalidInput, NotFound
from fuyun.ipam.addresses import IPNetwork, pack, parse_network, span_of, unpack
from fuyun.ipam.subnets import next_free_prefix
from fuyun.ipam.vlans import next_free_vlan
from fuyun.services.metrics import conflict_retried
from fuyun.store.models import Module, Network, Prefix, Subnet, VlanAllocation, VlanPool, Vrf

DEFAULT_VRF = "default"
VLAN_RETRIES = 16


def ensure_vrf(
    session: Session, settings: Settings, tenant_id: uuid.UUID, name: str = DEFAULT_VRF
) -> Vrf:
    """The tenant's VRF by name; the default one (with its private pools) is made on demand."""
    vrf = session.scalar(select(Vrf).where(Vrf.tenant_id == tenant_id, Vrf.name == name))
    if vrf is not None:
        return vrf
    if name != DEFAULT_VRF:
        raise NotFound(f"no VRF '{name}'", field="vrf")
    try:
        with session.begin_nested():
            vrf = Vrf(tenant_id=tenant_id, name=name)
            session.add(vrf)
            session.flush()
            for cidr in (settings.tenant_pool_v4, settings.tenant_pool_v6):
                session.add(
                    prefix_row(
                        parse_network(cidr),
                        kind="pool",
                        vrf_id=vrf.id,
                        description="tenant private pool",
                    )
                )
            session.flush()
    except IntegrityError:  # made concurrently by another request
        vrf = session.scalar(select(Vrf).where(Vrf.tenant_id == tenant_id, Vrf.name == name))
        assert vrf is not None
    return vrf


def prefix_row(
    net: IPNetwork,
    *,
    kind: str,
    vrf_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    **extra: object,
) -> Prefix:
    s = span_of(net)
    return Prefix(
        vrf_id=vrf_id,
        parent_id=parent_id,
        kind=kind,
        cidr=str(net),
        family=net.version,
        first=pack(s.first),
        last=pack(s.last),
        prefix_len=net.prefixlen,
        **extra,
    )


def ensure_vlan_pool(session: Session, settings: Settings, module: Module) -> VlanPool:
    pool = session.scalar(select(VlanPool).where(VlanPool.module_id == module.id))
    if pool is not None:
        return pool
    reserved = [int(v) for v in settings.vlan_reserved.split(",") if v.strip()]
    try:
        with session.begin_nested():
            pool = VlanPool(
                name=f"{module.name}-vlans",
                module_id=module.id,
                site_id=module.site_id,
                vlan_min=settings.vlan_min,
                vlan_max=settings.vlan_max,
                reserved=reserved,
            )
            session.add(pool)
            session.flush()
    except IntegrityError:
        pool = session.scalar(select(VlanPool).where(VlanPool.module_id == module.id))
        assert pool is not None
    return pool


def allocate_vlan(
    session: Session, pool: VlanPool, segment_id: uuid.UUID, wanted: int | None = None
) -> int:
    """Next free (or the ``wanted``) VLAN of the pool; the unique index settles races."""
    for _ in range(VLAN_RETRIES):
        if wanted is not None:
            vlan: int | None = wanted
            if not pool.vlan_min <= wanted <= pool.vlan_max or wanted in pool.reserved:
                raise InvalidInput(
                    f"VLAN {wanted} is outside pool {pool.name} "
                    f"({pool.vlan_min}-{pool.vlan_max}) or reserved",
                    field="vlan",
                )
        else:
            taken = session.scalars(
                select(VlanAllocation.vlan).where(VlanAllocation.pool_id == pool.id)
            )
            vlan = next_free_vlan(pool.vlan_min, pool.vlan_max, pool.reserved, taken)
            if vlan is None:
                raise CapacityExhausted(
                    f"VLAN pool {pool.name} is exhausted ({pool.vlan_min}-{pool.vlan_max})",
                    field="vlan",
                )
        try:
            with session.begin_nested():
                session.add(VlanAllocation(pool_id=pool.id, vlan=vlan, segment_id=segment_id))
                session.flush()
            return vlan
        except IntegrityError:
            if wanted is not None:
                raise Conflict(
                    f"VLAN {wanted} is taken in pool {pool.name}", field="vlan"
                ) from None
            conflict_retried("vlan")
    raise Conflict("could not allocate a VLAN under contention; retry", field="vlan")


def check_no_overlap(session: Session, vrf_id: uuid.UUID, net: IPNetwork) -> None:
    """Refuse a subnet that overlaps another in the same VRF (overlap across VRFs is fine)."""
    s = span_of(net)
    clash = session.scalar(
        select(Subnet)
        .where(
            Subnet.vrf_id == vrf_id,
            Subnet.family == net.version,
            Subnet.first <= pack(s.last),
            Subnet.last >= pack(s.first),
        )
        .limit(1)
    )
    if clash is not None:
        raise Conflict(f"{net} overlaps {clash.cidr} in the same VRF", field="cidr", code="overlap")


def lock_vrf(session: Session, vrf_id: uuid.UUID) -> None:
    """Serialise subnet creation per VRF (PostgreSQL; SQLite writers are serial anyway).

    ``FOR NO KEY UPDATE``: a mutex among carvers that does not block the key-share
    locks that inserting rows referencing the VRF takes.
    """
    session.scalar(select(Vrf.id).where(Vrf.id == vrf_id).with_for_update(key_share=True))


def pools_for(session: Session, vrf: Vrf, family: int, pool_id: uuid.UUID | None) -> list[Prefix]:
    if pool_id is not None:
        pool = session.get(Prefix, pool_id)
        if pool is None or pool.kind == "carved" or pool.vrf_id not in (None, vrf.id):
            raise InvalidInput("no such address pool", field="pool")
        if pool.family != family:
            raise InvalidInput(f"pool {pool.cidr} is not IPv{family}", field="pool")
        return [pool]
    return list(
        session.scalars(
            select(Prefix)
            .where(Prefix.vrf_id == vrf.id, Prefix.kind == "pool", Prefix.family == family)
            .order_by(Prefix.first)
        )
    )


def carve(
    session: Session, vrf: Vrf, family: int, prefix_len: int, pool_id: uuid.UUID | None = None
) -> tuple[IPNetwork, Prefix]:
    """The lowest free ``/prefix_len`` of the VRF's pools (or the given pool)."""
    lock_vrf(session, vrf.id)
    for pool in pools_for(session, vrf, family, pool_id):
        parent = parse_network(pool.cidr)
        taken = [
            parse_network(c)
            for c in session.scalars(select(Prefix.cidr).where(Prefix.parent_id == pool.id))
        ]
        if pool.vrf_id is not None:  # explicit subnets of the VRF inside this pool count too
            taken += [
                parse_network(c)
                for c in session.scalars(
                    select(Subnet.cidr).where(
                        Subnet.vrf_id == vrf.id,
                        Subnet.family == family,
                        Subnet.first <= pool.last,
                        Subnet.last >= pool.first,
                    )
                )
            ]
        net = next_free_prefix(parent, taken, prefix_len)
        if net is not None:
            return net, pool
    raise CapacityExhausted(f"no free /{prefix_len} left in the address pools", field="prefix_len")


def record_carve(session: Session, net: IPNetwork, pool: Prefix, subnet_id: uuid.UUID) -> None:
    session.add(
        prefix_row(
            net,
            kind="carved",
            vrf_id=pool.vrf_id,
            parent_id=pool.id,
            subnet_id=subnet_id,
            site_id=pool.site_id,
            module_id=pool.module_id,
        )
    )


def enclosing_pool(session: Session, vrf_id: uuid.UUID, net: IPNetwork) -> Prefix | None:
    s = span_of(net)
    return session.scalar(
        select(Prefix)
        .where(
            Prefix.vrf_id == vrf_id,
            Prefix.kind == "pool",
            Prefix.family == net.version,
            Prefix.first <= pack(s.first),
            Prefix.last >= pack(s.last),
        )
        .limit(1)
    )


def choose_module(session: Session, site_id: uuid.UUID | None) -> Module:
    """Where a new network lives when nobody says: the module with the fewest networks."""
    counts = (
        select(Network.module_id, func.count().label("n")).group_by(Network.module_id).subquery()
    )
    stmt = (
        select(Module)
        .outerjoin(counts, counts.c.module_id == Module.id)
        .order_by(func.coalesce(counts.c.n, 0), Module.name)
        .limit(1)
    )
    if site_id is not None:
        stmt = stmt.where(Module.site_id == site_id)
    module = session.scalar(stmt)
    if module is None:
        raise CapacityExhausted("no module to place the network in", field="site")
    return module


def span_size(first: bytes, last: bytes) -> int:
    return unpack(last) - unpack(first) + 1
