"""Tenant networks and their addressing: VRFs, pools, VLANs, subnets, ports, spans.

Uniqueness is the database's job: (vrf, address), (pool, vlan) and (mac) are
unique indexes, so a race between allocators ends in a retried collision, never a
duplicate. Addresses are 16-byte big-endian values (see ``fuyun.ipam.addresses``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin

Addr = LargeBinary(16)


class Vrf(IdMixin, TimestampMixin, Base):
    """A layer-3 context. Tenants' ranges may overlap across VRFs, never inside one."""

    __tablename__ = "vrfs"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_vrfs_tenant_name"),)

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    route_distinguisher: Mapped[str | None] = mapped_column(String(32), unique=True)


class Prefix(IdMixin, TimestampMixin, Base):
    """A node of the address plan: site aggregate → module pool → carved subnet."""

    __tablename__ = "prefixes"
    __table_args__ = (
        Index("ix_prefixes_parent_first", "parent_id", "first"),
        Index("ix_prefixes_vrf_first", "vrf_id", "family", "first"),
    )

    vrf_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("vrfs.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("prefixes.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))  # aggregate | pool | carved
    cidr: Mapped[str] = mapped_column(String(64))
    family: Mapped[int]
    first: Mapped[bytes] = mapped_column(Addr)
    last: Mapped[bytes] = mapped_column(Addr)
    prefix_len: Mapped[int]
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    module_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE")
    )
    subnet_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subnets.id", ondelete="CASCADE"), unique=True
    )
    description: Mapped[str] = mapped_column(String(256), default="")


class VlanPool(IdMixin, TimestampMixin, Base):
    __tablename__ = "vlan_pools"
    __table_args__ = (
        CheckConstraint(
            "vlan_min >= 1 AND vlan_max <= 4094 AND vlan_min <= vlan_max", name="valid_range"
        ),
    )

    name: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    module_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), unique=True
    )
    vlan_min: Mapped[int]
    vlan_max: Mapped[int]
    reserved: Mapped[list[int]] = mapped_column(JSON, default=list)


class VlanAllocation(IdMixin, Base):
    __tablename__ = "vlan_allocations"
    __table_args__ = (UniqueConstraint("pool_id", "vlan", name="uq_vlan_allocations_pool_vlan"),)

    pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vlan_pools.id", ondelete="CASCADE"))
    vlan: Mapped[int]
    segment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )


class Network(IdMixin, TimestampMixin, Base):
    __tablename__ = "networks"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_networks_tenant_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    vrf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vrfs.id"))
    module_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("modules.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1024), default="")
    growth: Mapped[str] = mapped_column(String(16), default="secondary")
    growth_prefix_len: Mapped[int | None]
    reserve_first: Mapped[int] = mapped_column(default=0)
    # DHCP and DNS for the network's ports (off for static-only networks).
    dhcp: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    # Bumped on every change that devices derive state from (span, subnets, ports).
    generation: Mapped[int] = mapped_column(default=1)
    # The generation the network node last reported in force (routers, DHCP, DNS).
    services_applied_generation: Mapped[int] = mapped_column(default=0, server_default="0")


class Segment(IdMixin, TimestampMixin, Base):
    """One VLAN of a network; ``new-vlan`` growth adds more, routed in the tenant VRF."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("network_id", "index", name="uq_segments_network_index"),)

    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    index: Mapped[int]
    vlan: Mapped[int]
    pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vlan_pools.id"))


class Subnet(IdMixin, TimestampMixin, Base):
    __tablename__ = "subnets"
    __table_args__ = (Index("ix_subnets_vrf_first", "vrf_id", "family", "first"),)

    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    vrf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vrfs.id"))
    cidr: Mapped[str] = mapped_column(String(64))
    family: Mapped[int]
    first: Mapped[bytes] = mapped_column(Addr)
    last: Mapped[bytes] = mapped_column(Addr)
    prefix_len: Mapped[int]
    gateway: Mapped[bytes | None] = mapped_column(Addr)
    primary: Mapped[bool] = mapped_column(default=True)
    reserve_first: Mapped[int] = mapped_column(default=0)
    # Allocatable addresses, capped at 2**62 (an IPv6 /64 holds more than any column).
    capacity: Mapped[int] = mapped_column(BigInteger)


class FreeRange(IdMixin, Base):
    """A run of free addresses of a subnet; next-free is the lowest row's ``first``."""

    __tablename__ = "ip_free_ranges"
    __table_args__ = (Index("ix_ip_free_ranges_subnet_first", "subnet_id", "first", unique=True),)

    subnet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"))
    first: Mapped[bytes] = mapped_column(Addr)
    last: Mapped[bytes] = mapped_column(Addr)


class IpAllocation(IdMixin, Base):
    __tablename__ = "ip_allocations"
    __table_args__ = (
        UniqueConstraint("vrf_id", "address", name="uq_ip_allocations_vrf_address"),
        Index("ix_ip_allocations_subnet_state", "subnet_id", "state", "released_at"),
    )

    vrf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vrfs.id"))
    subnet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"))
    address: Mapped[bytes] = mapped_column(Addr)
    family: Mapped[int]
    port_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="allocated")  # or quarantined
    released_at: Mapped[datetime | None]


class Port(IdMixin, TimestampMixin, Base):
    __tablename__ = "ports"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    network_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("networks.id"), index=True)
    segment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("segments.id"), index=True)
    vm_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("vms.id"), index=True)
    host_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    # During a move, the other host that also holds the port's state (the destination
    # before cut-over, the source after it), so both enforce it while the VM moves.
    peer_host_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    mac: Mapped[str] = mapped_column(String(17), unique=True)
    qos_policy_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("qos_policies.id", ondelete="RESTRICT"), index=True
    )


class SpanMember(Base):
    """A switch carrying a segment's VLAN, with the ports that keep it there."""

    __tablename__ = "span_members"

    segment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    switch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("switches.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    ports: Mapped[int] = mapped_column(default=0)
