"""Request and response bodies for networks, subnets, ports and the address plan."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from fuyun.api.schemas import In, Out
from fuyun.services.networks import Growth

Cidr = Annotated[str, Field(min_length=3, max_length=64, examples=["10.1.0.0/24"])]
Ip = Annotated[str, Field(min_length=2, max_length=64)]
Vlan = Annotated[int, Field(ge=1, le=4094)]
PrefixLen = Annotated[int, Field(ge=8, le=128)]


class NetworkCreate(In):
    name: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ]
    cidr: Cidr | None = Field(None, description="the primary subnet; or give prefix_len")
    prefix_len: PrefixLen | None = Field(None, description="carve the primary subnet")
    gateway: Ip | None = None
    growth: Growth = Growth.SECONDARY
    growth_prefix_len: PrefixLen | None = None
    reserve_first: Annotated[int, Field(ge=0, le=1024)] = 0
    site: Annotated[str | None, Field(max_length=64)] = None
    module: Annotated[str | None, Field(max_length=64, description="operators only")] = None
    vlan: Vlan | None = Field(None, description="a specific VLAN from the module's pool")
    pool: uuid.UUID | None = Field(None, description="carve from this address pool")
    vrf: Annotated[str, Field(min_length=1, max_length=64)] = "default"
    description: Annotated[str, Field(max_length=1024)] = ""
    tenant_id: uuid.UUID | None = Field(None, description="operators only")
    dhcp: bool = Field(True, description="DHCP and DNS for the network's ports")


class DhcpSubnet(BaseModel):
    cidr: str
    gateway: str | None


class DhcpReservation(BaseModel):
    mac: str
    address: str
    hostname: str


class DhcpScopePublic(BaseModel):
    generation: int
    network_id: str
    network: str
    tenant: str
    vlans: list[int]
    zone: str
    mtu: int
    enabled: bool
    subnets: list[DhcpSubnet]
    reservations: list[DhcpReservation]
    dns_server: str | None
    names: dict[str, str]


class NetworkUpdate(In):
    description: Annotated[str | None, Field(max_length=1024)] = None
    dhcp: bool | None = None
    growth: Growth | None = None
    growth_prefix_len: PrefixLen | None = None


class NetworkPublic(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    vrf_id: uuid.UUID
    name: str
    description: str
    growth: Growth
    growth_prefix_len: int | None
    reserve_first: int
    dhcp: bool
    generation: int
    services_applied_generation: int = Field(
        0, description="the generation the network node runs (routers, DHCP, DNS); lag if lower"
    )
    created_at: datetime


class NetworkDetail(NetworkPublic):
    vlans: list[int]
    subnets: list[SubnetPublic]
    span: list[str] = Field(description="switches carrying the network's VLANs (operators)")


class SubnetCreate(In):
    cidr: Cidr | None = None
    prefix_len: PrefixLen | None = None
    gateway: Ip | None = None
    new_vlan: bool = Field(False, description="put the subnet on a new VLAN of the network")


class SubnetPublic(BaseModel):
    id: uuid.UUID
    network_id: uuid.UUID
    cidr: str
    family: int
    gateway: str | None
    vlan: int
    primary: bool
    capacity: int


class PortCreate(In):
    network_id: uuid.UUID
    name: Annotated[str, Field(max_length=64)] = ""
    ip: Ip | None = Field(None, description="a specific address; next free otherwise")
    mac: Annotated[str | None, Field(max_length=17, description="operators only")] = None
    host: Annotated[str | None, Field(max_length=64, description="operators: bind to host")] = None
    security_groups: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=16, description="the tenant default group if not given"
    )


class TableChangePublic(BaseModel):
    switch: str
    table: str
    used: int
    after: int
    capacity: int
    fits: bool


class PortPublic(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    network_id: uuid.UUID
    vlan: int
    name: str
    mac: str
    ips: list[str]
    vm_id: uuid.UUID | None
    host_id: uuid.UUID | None = Field(None, description="operators only")
    grew: str | None = Field(None, description="the growth step this port caused")
    l2: list[TableChangePublic] = Field(
        default_factory=list, description="switch tables this port changed"
    )
    dry_run: bool = False


class VrfPublic(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    name: str


class VlanPoolPublic(Out):
    id: uuid.UUID
    name: str
    module_id: uuid.UUID | None
    vlan_min: int
    vlan_max: int
    reserved: list[int]


class VlanPoolUpdate(In):
    vlan_min: Vlan | None = None
    vlan_max: Vlan | None = None
    reserved: Annotated[list[Vlan] | None, Field(max_length=4094)] = None


class PrefixCreate(In):
    cidr: Cidr
    kind: Annotated[str, Field(pattern="^(aggregate|pool)$")] = "pool"
    site: Annotated[str | None, Field(max_length=64)] = None
    module: Annotated[str | None, Field(max_length=64)] = None
    parent_id: uuid.UUID | None = None
    description: Annotated[str, Field(max_length=256)] = ""


class PrefixPublic(Out):
    id: uuid.UUID
    vrf_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    kind: str
    cidr: str
    site_id: uuid.UUID | None
    module_id: uuid.UUID | None
    subnet_id: uuid.UUID | None
    description: str


class SubnetUsagePublic(BaseModel):
    id: uuid.UUID
    cidr: str
    vlan: int
    primary: bool
    size: int
    reserved: int
    allocated: int
    quarantined: int
    free: int


class NetworkUsagePublic(BaseModel):
    id: uuid.UUID
    name: str
    tenant_id: uuid.UUID
    module: str
    growth: str
    vlans: list[int]
    allocated: int
    free: int
    quarantined: int
    reserved: int
    boundary_loss: int
    growth_vlans: int
    subnets: list[SubnetUsagePublic]


class ModuleUsagePublic(BaseModel):
    name: str
    networks: int
    vlans_used: int
    vlan_pool_size: int
    allocated: int
    free: int
    quarantined: int
    reserved: int
    boundary_loss: int


class UtilizationPublic(BaseModel):
    networks: list[NetworkUsagePublic]
    modules: list[ModuleUsagePublic]


NetworkDetail.model_rebuild()
