"""All tables, imported together so that ``Base.metadata`` is complete."""

from fuyun.store.models.audit import AuditEvent
from fuyun.store.models.base import Base
from fuyun.store.models.compute import Vm
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
from fuyun.store.models.tenancy import ApiToken, Quota, Tenant, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Flavor",
    "Host",
    "Interconnect",
    "Module",
    "Quota",
    "ServerModel",
    "Site",
    "Switch",
    "SwitchUplink",
    "Tenant",
    "User",
    "Vm",
]
