"""All tables, imported together so that ``Base.metadata`` is complete."""

from fuyun.store.models.address_sets import AddressSet, AddressSetMember, DeviceAddressSet
from fuyun.store.models.audit import AuditEvent
from fuyun.store.models.base import Base
from fuyun.store.models.compute import ServerGroup, Vm
from fuyun.store.models.inventory import (
    Flavor,
    Host,
    Interconnect,
    Module,
    ModuleLink,
    ServerModel,
    Site,
    Switch,
    SwitchUplink,
)
from fuyun.store.models.leaks import RouteLeak
from fuyun.store.models.migration import MigrationBatch
from fuyun.store.models.network import (
    FreeRange,
    IpAllocation,
    Network,
    Port,
    Prefix,
    Segment,
    SpanMember,
    Subnet,
    VlanAllocation,
    VlanPool,
    Vrf,
)
from fuyun.store.models.policy import (
    DeviceState,
    GlobalRule,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)
from fuyun.store.models.qos import QosClaim, QosPolicy, TenantQos
from fuyun.store.models.reports import StoredReport
from fuyun.store.models.scaleout import HostCredential, IdempotencyKey
from fuyun.store.models.telemetry import InterfaceBucket, TrafficAlert, TrafficBucket
from fuyun.store.models.tenancy import ApiToken, Quota, Tenant, User
from fuyun.store.models.workflow import Workflow, WorkflowStep

__all__ = [
    "AddressSet",
    "AddressSetMember",
    "ApiToken",
    "AuditEvent",
    "Base",
    "DeviceAddressSet",
    "DeviceState",
    "Flavor",
    "FreeRange",
    "GlobalRule",
    "Host",
    "HostCredential",
    "IdempotencyKey",
    "Interconnect",
    "InterfaceBucket",
    "IpAllocation",
    "MigrationBatch",
    "Module",
    "ModuleLink",
    "Network",
    "Port",
    "PortSecurityGroup",
    "Prefix",
    "QosClaim",
    "QosPolicy",
    "Quota",
    "RouteLeak",
    "SecurityGroup",
    "SecurityGroupRule",
    "Segment",
    "ServerGroup",
    "ServerModel",
    "Site",
    "SpanMember",
    "StoredReport",
    "Subnet",
    "Switch",
    "SwitchUplink",
    "Tenant",
    "TenantQos",
    "TrafficAlert",
    "TrafficBucket",
    "User",
    "VlanAllocation",
    "VlanPool",
    "Vm",
    "Vrf",
    "Workflow",
    "WorkflowStep",
]
