"""The navigation each role sees, and the places reserved for capabilities still to come.

``PLANNED`` is the marked place for pages that wait on other issues: each entry is
shown (greyed, not a link) so nobody mistakes its absence for an oversight, and a
capability that lands moves from ``PLANNED`` into ``PARTNER`` or ``OPERATOR`` with its
page. There are no placeholder pages behind them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fuyun.domain.enums import Role
from fuyun.services.principal import Principal


@dataclass(frozen=True)
class Item:
    href: str
    label: str


@dataclass(frozen=True)
class Planned:
    label: str
    issue: int


@dataclass(frozen=True)
class Nav:
    sections: list[tuple[str, list[Item]]]
    planned: list[Planned]


PARTNER = [
    Item("/", "Dashboard"),
    Item("/vms", "VMs"),
    Item("/networks", "Networks"),
    Item("/route-leaks", "Route leaks"),
    Item("/security-groups", "Security groups"),
    Item("/groups", "Server groups"),
    Item("/qos", "QoS policies"),
    Item("/workflows", "Workflows"),
    Item("/traffic", "Traffic"),
    Item("/audit", "Audit log"),
]
TENANT_ADMIN = [Item("/account/users", "Users"), Item("/account/tokens", "API tokens")]
OPERATOR = [
    Item("/", "Overview"),
    Item("/ops/fabric", "Fabric map"),
    Item("/ops/migrations", "Migrations"),
    Item("/ops/tenants", "Tenants & quotas"),
    Item("/ops/plan", "Capacity plan"),
    Item("/vms", "VMs"),
    Item("/networks", "Networks"),
    Item("/route-leaks", "Route leaks"),
    Item("/security-groups", "Security groups"),
    Item("/ops/verify", "Isolation verification"),
    Item("/qos", "QoS policies"),
    Item("/workflows", "Workflows"),
    Item("/traffic", "Traffic"),
    Item("/audit", "Audit log"),
]
PLANNED_PARTNER: list[Planned] = []
PLANNED_OPERATOR: list[Planned] = []


def nav_for(principal: Principal | None) -> Nav:
    if principal is None:
        return Nav([], [])
    if principal.sees_everything:
        return Nav([("Console", OPERATOR)], PLANNED_OPERATOR)
    sections = [("Partner", PARTNER)]
    if principal.role is Role.TENANT_ADMIN:
        sections.append(("Account", TENANT_ADMIN))
    else:
        sections.append(("Account", [Item("/account/tokens", "API tokens")]))
    return Nav(sections, PLANNED_PARTNER)
