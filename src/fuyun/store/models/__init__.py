"""All tables, imported together so that ``Base.metadata`` is complete."""

from fuyun.store.models.audit import AuditEvent
from fuyun.store.models.base import Base
from fuyun.store.models.compute import ServerGroup, Vm
from fuyun.store.models.inventory import (
    Flavor,
    Host,
    Interconnect,
    Module,
    ServerModel,
    Site,
    Switch,
    SwitchUplink,
)
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
from fuyun.store.models.tenancy import ApiToken, Quota, Tenant, User
from fuyun.store.models.workflow import Workflow, WorkflowStep

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Flavor",
    "FreeRange",
    "Host",
    "Interconnect",
    "IpAllocation",
    "Module",
    "Network",
    "Port",
    "Prefix",
    "Quota",
    "Segment",
    "ServerGroup",
    "ServerModel",
    "Site",
    "SpanMember",
    "Subnet",
    "Switch",
    "SwitchUplink",
    "Tenant",
    "User",
    "VlanAllocation",
    "VlanPool",
    "Vm",
    "Vrf",
    "Workflow",
    "WorkflowStep",
]
