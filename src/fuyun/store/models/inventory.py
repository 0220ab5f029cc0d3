"""The physical fabric: sites, interconnects, modules, switches, hosts, catalogs.

Hosts and switches carry both their capacity and their current use in the same
row, because capacity is claimed in the database by a conditional ``UPDATE``
(``… SET used = used + n WHERE used + n <= cap``): the row is the lock.
"""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


class ServerModel(IdMixin, TimestampMixin, Base):
    __tablename__ = "server_models"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    cores: Mapped[int]
    ram_mb: Mapped[int]
    disk_gb: Mapped[int]
    nic_count: Mapped[int]
    nic_speed_mbps: Mapped[int]


class Flavor(IdMixin, TimestampMixin, Base):
    __tablename__ = "flavors"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    vcpus: Mapped[int]
    ram_mb: Mapped[int]
    disk_gb: Mapped[int]
    bandwidth_mbps: Mapped[int] = mapped_column(default=0)


class Site(IdMixin, TimestampMixin, Base):
    __tablename__ = "sites"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    city: Mapped[str] = mapped_column(String(128), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")

    modules: Mapped[list[Module]] = relationship(back_populates="site")


class Interconnect(IdMixin, TimestampMixin, Base):
    __tablename__ = "interconnects"
    __table_args__ = (CheckConstraint("site_a_id <> site_b_id", name="distinct_sites"),)

    name: Mapped[str] = mapped_column(String(64), unique=True)
    site_a_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    site_b_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    l2_extension: Mapped[str] = mapped_column(String(16))
    bandwidth_mbps: Mapped[int] = mapped_column(default=10_000)


class ModuleLink(IdMixin, TimestampMixin, Base):
    """A link between two modules of one site (a DCI pair, a vPC peer trunk).

    Modules of a site are joined by routing; only a link whose ``l2_extension`` is
    not ``none`` lets a VLAN cross from one to the other (a move keeping its IP).
    """

    __tablename__ = "module_links"
    __table_args__ = (CheckConstraint("module_a_id <> module_b_id", name="distinct_modules"),)

    name: Mapped[str] = mapped_column(String(64), unique=True)
    module_a_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), index=True
    )
    module_b_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), index=True
    )
    l2_extension: Mapped[str] = mapped_column(String(16))
    bandwidth_mbps: Mapped[int] = mapped_column(default=10_000)


class Module(IdMixin, TimestampMixin, Base):
    __tablename__ = "modules"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    fabric_kind: Mapped[str] = mapped_column(String(32))
    l2_technology: Mapped[str | None] = mapped_column(String(16))
    enforcement_point: Mapped[str] = mapped_column(String(16), default="vswitch")

    site: Mapped[Site] = relationship(back_populates="modules")


class Switch(IdMixin, TimestampMixin, Base):
    __tablename__ = "switches"
    __table_args__ = (
        CheckConstraint("used_mac <= mac_capacity", name="mac_within_capacity"),
        CheckConstraint("used_arp <= arp_capacity", name="arp_within_capacity"),
        CheckConstraint("used_vlans <= vlan_capacity", name="vlans_within_capacity"),
        CheckConstraint("used_acl <= acl_capacity", name="acl_within_capacity"),
        CheckConstraint(
            "used_bandwidth_mbps >= 0 AND used_bandwidth_mbps <= uplink_mbps",
            name="bandwidth_within_uplink",
        ),
    )

    name: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), index=True
    )
    module_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    platform: Mapped[str] = mapped_column(String(16))
    mgmt_address: Mapped[str | None] = mapped_column(String(64), unique=True)
    port_count: Mapped[int] = mapped_column(default=48)
    uplink_mbps: Mapped[int] = mapped_column(default=40_000)
    mac_capacity: Mapped[int]
    arp_capacity: Mapped[int]
    vlan_capacity: Mapped[int]
    acl_capacity: Mapped[int]
    used_mac: Mapped[int] = mapped_column(default=0)
    used_arp: Mapped[int] = mapped_column(default=0)
    used_vlans: Mapped[int] = mapped_column(default=0)
    used_acl: Mapped[int] = mapped_column(default=0)
    # Guaranteed Mbit/s admitted through this switch's uplinks (QoS admission).
    used_bandwidth_mbps: Mapped[int] = mapped_column(default=0)


class SwitchUplink(Base):
    """A cable from a ToR up to an aggregation switch."""

    __tablename__ = "switch_uplinks"

    switch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("switches.id", ondelete="CASCADE"), primary_key=True
    )
    uplink_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("switches.id", ondelete="CASCADE"), primary_key=True
    )


class Host(IdMixin, TimestampMixin, Base):
    __tablename__ = "hosts"
    __table_args__ = (
        CheckConstraint(
            "used_vcpus >= 0 AND used_ram_mb >= 0 AND vm_count >= 0", name="used_nonneg"
        ),
        CheckConstraint("vm_count <= max_vms", name="density_within_limit"),
        CheckConstraint("used_bandwidth_mbps <= nic_mbps", name="bandwidth_within_nic"),
        Index("ix_hosts_module_state", "module_id", "state"),
        Index("ix_hosts_site_state", "site_id", "state"),
        UniqueConstraint("mgmt_address", name="uq_hosts_mgmt_address"),
    )

    name: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    module_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"))
    tor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("switches.id", ondelete="CASCADE"), index=True
    )
    server_model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("server_models.id"))
    mgmt_address: Mapped[str | None] = mapped_column(String(64))
    # The ToR interface the host is cabled to (``fuyun.fabric.torports``); the ToR's
    # trunk to the host is configured there.
    tor_port: Mapped[str | None] = mapped_column(String(32))
    hypervisor: Mapped[str] = mapped_column(String(16), default="kvm")
    vswitch: Mapped[str] = mapped_column(String(16), default="ovs")
    state: Mapped[str] = mapped_column(String(16), default="active", index=True)
    # Capacity copied from the server model so a claim is one conditional UPDATE.
    vcpus: Mapped[int]
    ram_mb: Mapped[int]
    disk_gb: Mapped[int]
    nic_mbps: Mapped[int]
    max_vms: Mapped[int]
    used_vcpus: Mapped[int] = mapped_column(default=0)
    used_ram_mb: Mapped[int] = mapped_column(default=0)
    used_disk_gb: Mapped[int] = mapped_column(default=0)
    used_bandwidth_mbps: Mapped[int] = mapped_column(default=0)
    vm_count: Mapped[int] = mapped_column(default=0)
