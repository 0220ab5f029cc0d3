"""Choices for form selects, read through the services with the visitor's principal."""

from __future__ import annotations

import uuid

from fuyun.services import groups, inventory, networks, policy, qos, tenants
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Tenant

Options = list[tuple[str, str]]
# Readable names of the quota resources; a resource added later shows by its key until named.
QUOTA_LABELS = {
    "vms": "VMs",
    "vcpus": "vCPUs",
    "ram_mb": "RAM (MiB)",
    "ips": "IP addresses",
    "bandwidth_mbps": "Bandwidth (Mbit/s)",
    "rules": "Security rules",
}


def label(resource: str) -> str:
    """A quota resource's readable name; one added later shows by its key until named here."""
    return QUOTA_LABELS.get(resource, resource)


def flavor_options(db: Database, who: Principal) -> Options:
    return [
        (f.name, f"{f.name} — {f.vcpus} vCPU, {f.ram_mb // 1024} GiB RAM, {f.disk_gb} GB disk")
        for f in inventory.list_objects(db, who, "flavor", limit=200).items
    ]


def _owner_suffix(
    db: Database, who: Principal, tenant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    return inventory.names_of(db, Tenant, tenant_ids) if who.sees_everything else {}


def network_options(db: Database, who: Principal) -> Options:
    """The caller's networks (an operator sees every tenant's, labelled with the tenant)."""
    items = networks.list_networks(db, who, limit=500).items
    owners = _owner_suffix(db, who, [n.tenant_id for n in items])
    return [(str(n.id), f"{n.name} ({owners[n.tenant_id]})" if owners else n.name) for n in items]


def group_options(db: Database, who: Principal) -> Options:
    items = groups.list_groups(db, who)
    owners = _owner_suffix(db, who, [g.tenant_id for g in items])
    return [("", "none")] + [
        (
            str(g.id),
            f"{g.name} — {g.policy} per {g.level}"
            + (f" ({owners[g.tenant_id]})" if owners else ""),
        )
        for g in items
    ]


def security_group_options(db: Database, who: Principal) -> Options:
    """Security groups by id (an operator sees every tenant's, labelled with the tenant)."""
    items = policy.list_groups(db, who)
    owners = _owner_suffix(db, who, [g.tenant_id for g in items])
    return [(str(g.id), f"{g.name} ({owners[g.tenant_id]})" if owners else g.name) for g in items]


def qos_policy_options(db: Database, who: Principal) -> Options:
    """Port QoS policies by id, "none" first (an operator sees every tenant's, labelled)."""
    items = [p for p in qos.list_policies(db, who) if p.scope == "port"]
    owners = _owner_suffix(db, who, [p.tenant_id for p in items])
    return [("", "none")] + [
        (
            str(p.id),
            f"{p.name}: {p.guarantee_mbps}/{p.ceiling_mbps} Mbit/s"
            + (f" ({owners[p.tenant_id]})" if owners else ""),
        )
        for p in items
    ]


def tenant_options(db: Database, who: Principal) -> Options:
    return [("", "choose a tenant")] + [
        (str(t.id), t.display_name or t.name)
        for t in tenants.list_tenants(db, who, limit=1000).items
    ]
