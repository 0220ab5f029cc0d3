"""Request and response bodies, one family per resource (Create / Update / Public).

Every integer has bounds and every string a length, so nonsense is refused at
the edge with a 422 that names the field, before any service runs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from fuyun.domain.enums import (
    EnforcementPoint,
    FabricKind,
    HostState,
    Hypervisor,
    L2Extension,
    L2Technology,
    Role,
    SwitchPlatform,
    SwitchRole,
    VSwitchKind,
)
from fuyun.domain.vm_states import VmState

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Ref = Annotated[str, Field(min_length=1, max_length=64, description="a name or a UUID")]
Int = Annotated[int, Field(ge=0, le=2**31 - 1)]
PosInt = Annotated[int, Field(ge=1, le=2**31 - 1)]
Text = Annotated[str, Field(max_length=1024)]

T = TypeVar("T")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ListOf(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="pass as ?cursor= for the next page")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- service --------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    database: str


class Version(BaseModel):
    version: str
    api: str = "v1"


# -- identity -------------------------------------------------------------------------


class LoginIn(In):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class TokenCreate(In):
    user_id: uuid.UUID | None = None
    name: Annotated[str, Field(max_length=64)] = ""
    expires_in_s: Annotated[int | None, Field(ge=1, le=10 * 365 * 86400)] = None


class TokenPublic(Out):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenPublic):
    token: str = Field(description="the secret; shown this once and never again")


class UserCreate(In):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    role: Role
    tenant_id: uuid.UUID | None = None
    password: Annotated[str | None, Field(min_length=8, max_length=256)] = None


class UserUpdate(In):
    role: Role | None = None
    password: Annotated[str | None, Field(min_length=8, max_length=256)] = None
    disabled: bool | None = None


class UserPublic(Out):
    id: uuid.UUID
    username: str
    role: Role
    tenant_id: uuid.UUID | None
    disabled: bool
    created_at: datetime


# -- tenants and quotas -----------------------------------------------------------------


class QuotaLimits(In):
    vms: Int | None = None
    vcpus: Int | None = None
    ram_mb: Int | None = None
    ips: Int | None = None
    bandwidth_mbps: Int | None = None
    rules: Int | None = None

    def given(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TenantCreate(In):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    display_name: Annotated[str, Field(max_length=128)] = ""
    description: Text = ""
    quotas: QuotaLimits | None = None


class TenantUpdate(In):
    display_name: Annotated[str | None, Field(max_length=128)] = None
    description: Annotated[str | None, Field(max_length=1024)] = None


class TenantPublic(Out):
    id: uuid.UUID
    name: str
    display_name: str
    description: str
    created_at: datetime


class QuotaItem(BaseModel):
    resource: str
    limit: int
    used: int


class QuotaPublic(BaseModel):
    tenant_id: uuid.UUID
    usage: list[QuotaItem]


# -- inventory ------------------------------------------------------------------------


class ServerModelCreate(In):
    name: Name
    cores: PosInt
    ram_mb: PosInt
    disk_gb: PosInt
    nic_count: Annotated[int, Field(ge=1, le=16)] = 2
    nic_speed_mbps: Annotated[int, Field(ge=100, le=400_000)] = 10_000


class ServerModelPublic(Out):
    id: uuid.UUID
    name: str
    cores: int
    ram_mb: int
    disk_gb: int
    nic_count: int
    nic_speed_mbps: int


class FlavorCreate(In):
    name: Name
    vcpus: Annotated[int, Field(ge=1, le=256)]
    ram_mb: Annotated[int, Field(ge=64, le=4 * 1024 * 1024)]
    disk_gb: Annotated[int, Field(ge=1, le=65536)]
    bandwidth_mbps: Annotated[int, Field(ge=0, le=400_000)] = 0


class FlavorUpdate(In):
    bandwidth_mbps: Annotated[int, Field(ge=0, le=400_000)]


class FlavorPublic(Out):
    id: uuid.UUID
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    bandwidth_mbps: int


class SiteCreate(In):
    name: Name
    city: Annotated[str, Field(max_length=128)] = ""
    description: Text = ""


class SiteUpdate(In):
    city: Annotated[str | None, Field(max_length=128)] = None
    description: Annotated[str | None, Field(max_length=1024)] = None


class SitePublic(Out):
    id: uuid.UUID
    name: str
    city: str
    description: str


LinkMbps = Annotated[int, Field(ge=1, le=10_000_000)]


class LinkUpdate(In):
    """What may change on a link between sites or modules: its extension and speed."""

    l2_extension: L2Extension | None = None
    bandwidth_mbps: LinkMbps | None = None


class InterconnectCreate(In):
    name: Name
    site_a: Ref
    site_b: Ref
    l2_extension: L2Extension = L2Extension.NONE
    bandwidth_mbps: LinkMbps = 10_000


class InterconnectUpdate(LinkUpdate):
    pass


class InterconnectPublic(Out):
    id: uuid.UUID
    name: str
    site_a_id: uuid.UUID
    site_b_id: uuid.UUID
    l2_extension: L2Extension
    bandwidth_mbps: int


class ModuleLinkCreate(In):
    name: Name
    module_a: Ref
    module_b: Ref
    l2_extension: L2Extension = L2Extension.NONE
    bandwidth_mbps: LinkMbps = 10_000


class ModuleLinkUpdate(LinkUpdate):
    pass


class ModuleLinkPublic(Out):
    id: uuid.UUID
    name: str
    module_a_id: uuid.UUID
    module_b_id: uuid.UUID
    l2_extension: L2Extension
    bandwidth_mbps: int


class ModuleCreate(In):
    name: Name
    site: Ref
    fabric_kind: FabricKind
    l2_technology: L2Technology | None = None
    enforcement_point: EnforcementPoint = EnforcementPoint.VSWITCH


class ModuleUpdate(In):
    enforcement_point: EnforcementPoint


class ModulePublic(Out):
    id: uuid.UUID
    name: str
    site_id: uuid.UUID
    fabric_kind: FabricKind
    l2_technology: L2Technology | None
    enforcement_point: EnforcementPoint


class SwitchCreate(In):
    name: Name
    module: Ref
    role: SwitchRole
    platform: SwitchPlatform = SwitchPlatform.NXOS
    mgmt_address: Annotated[str | None, Field(max_length=64)] = None
    port_count: Annotated[int, Field(ge=1, le=1024)] = 48
    uplink_mbps: Annotated[int, Field(ge=1, le=10_000_000)] = 40_000
    uplinks: list[Ref] = Field(default_factory=list, max_length=16)
    mac_capacity: PosInt
    arp_capacity: PosInt
    vlan_capacity: Annotated[int, Field(ge=1, le=4094)]
    acl_capacity: PosInt


class SwitchUpdate(In):
    mgmt_address: Annotated[str | None, Field(max_length=64)] = None
    uplink_mbps: Annotated[int | None, Field(ge=1, le=10_000_000)] = None
    mac_capacity: PosInt | None = None
    arp_capacity: PosInt | None = None
    vlan_capacity: Annotated[int | None, Field(ge=1, le=4094)] = None
    acl_capacity: PosInt | None = None


class SwitchPublic(Out):
    id: uuid.UUID
    name: str
    site_id: uuid.UUID
    module_id: uuid.UUID
    role: SwitchRole
    platform: SwitchPlatform
    mgmt_address: str | None
    port_count: int
    uplink_mbps: int
    mac_capacity: int
    arp_capacity: int
    vlan_capacity: int
    acl_capacity: int
    used_mac: int
    used_arp: int
    used_vlans: int
    used_acl: int


TorPort = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z][A-Za-z0-9/.:-]*$",
        description="the ToR interface the host is cabled to, e.g. Ethernet1/7",
    ),
]


class HostCreate(In):
    name: Name
    tor: Ref
    server_model: Ref
    # Left out: the ToR's lowest free host-facing interface, stored so it never shifts.
    tor_port: TorPort | None = None
    mgmt_address: Annotated[str | None, Field(max_length=64)] = None
    hypervisor: Hypervisor = Hypervisor.KVM
    vswitch: VSwitchKind = VSwitchKind.OVS
    max_vms: Annotated[int, Field(ge=1, le=64)] = 8


class HostUpdate(In):
    mgmt_address: Annotated[str | None, Field(max_length=64)] = None
    tor_port: TorPort | None = None
    max_vms: Annotated[int | None, Field(ge=1, le=64)] = None
    hypervisor: Hypervisor | None = None
    vswitch: VSwitchKind | None = None


class HostStateIn(In):
    state: HostState


class HostPublic(Out):
    id: uuid.UUID
    name: str
    site_id: uuid.UUID
    module_id: uuid.UUID
    tor_id: uuid.UUID
    tor_port: str | None
    server_model_id: uuid.UUID
    mgmt_address: str | None
    hypervisor: Hypervisor
    vswitch: VSwitchKind
    state: HostState
    vcpus: int
    ram_mb: int
    disk_gb: int
    nic_mbps: int
    max_vms: int
    used_vcpus: int
    used_ram_mb: int
    used_disk_gb: int
    used_bandwidth_mbps: int
    vm_count: int


class HostStateChange(BaseModel):
    host: HostPublic
    vms_to_move: list[uuid.UUID]


# -- VMs ------------------------------------------------------------------------------


class VmCreate(In):
    name: Annotated[
        str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ]
    flavor: Ref
    image: Annotated[str, Field(min_length=1, max_length=128)] = "debian-12"
    count: Annotated[int, Field(ge=1, le=500)] = 1
    host: Ref | None = Field(None, description="operators only: pin to this host")
    tenant_id: uuid.UUID | None = Field(None, description="operators only: create for a tenant")


class VmPublic(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    flavor_id: uuid.UUID
    image: str
    state: VmState
    vcpus: int
    ram_mb: int
    disk_gb: int
    bandwidth_mbps: int
    host_id: uuid.UUID | None = Field(None, description="shown to operators only")
    created_at: datetime
    updated_at: datetime


# -- audit ----------------------------------------------------------------------------


class AuditEventPublic(Out):
    id: uuid.UUID
    at: datetime
    actor: str
    actor_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    action: str
    object_type: str
    object_id: str | None
    result: str
    detail: dict[str, Any]


class VmCreateNetworked(VmCreate):
    networks: list[Ref] = Field(
        default_factory=list, max_length=8, description="one NIC per network (name or id)"
    )
    group: Ref | None = Field(None, description="server group (affinity/anti-affinity)")
    strategy: Annotated[str | None, Field(pattern="^(pack|spread)$")] = None
    security_groups: list[Ref] = Field(
        default_factory=list, max_length=16, description="on every NIC; the tenant default if none"
    )
    qos_policy: Ref | None = Field(None, description="a port QoS policy on every NIC")


class VmCreated(BaseModel):
    items: list[VmPublic]
    workflow_id: uuid.UUID


class VmResize(In):
    flavor: Ref


class VmAttach(In):
    network: Ref
    ip: Annotated[str | None, Field(max_length=64)] = None


class Verdict(BaseModel):
    filter: str
    passes: bool
    reason: str | None


class ExplanationPublic(BaseModel):
    vm_id: uuid.UUID
    host: str | None
    placement: dict[str, Any]
    candidate: str | None = None
    verdicts: list[Verdict] = Field(default_factory=list)


class GroupCreate(In):
    name: Name
    policy: Annotated[str, Field(pattern="^(affinity|anti-affinity)$")]
    level: Annotated[str, Field(pattern="^(host|tor|module|site)$")] = "host"
    tenant_id: uuid.UUID | None = Field(None, description="operators only")


class GroupPublic(Out):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    policy: str
    level: str


class WorkflowStepPublic(Out):
    index: int
    name: str
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class WorkflowPublic(Out):
    id: uuid.UUID
    kind: str
    state: str
    tenant_id: uuid.UUID | None
    actor: str
    subject: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class WorkflowDetail(WorkflowPublic):
    steps: list[WorkflowStepPublic]
    data: dict[str, Any]
