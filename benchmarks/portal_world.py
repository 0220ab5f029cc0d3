"""The world the portal benchmark measures pages in: a ``default`` fabric that is not empty.

Seeded through the services (as the API and the portal would), so every page shows real
rows: partners with users and API tokens, networks with DHCP, security groups with rules
(CIDR and remote-group), QoS policies on ports and a tenant aggregate, a server group,
VMs in all of these, a ``load`` tenant spread over the fabric for the heat maps, a
history of live migrations and an evacuation batch, hosts in maintenance, host agent
credentials, and half an hour of per-VM traffic samples.

:func:`resolve` finds, in a store seeded earlier, the objects whose pages are measured,
so a store kept with ``--store`` is measured the same way as a fresh one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from fuyun.domain.enums import HostState, Role
from fuyun.domain.vm_states import VmState
from fuyun.services import agents, groups, identity, inventory, networks, policy, qos, tenants, vms
from fuyun.services.bootstrap import bootstrap, resync_driver
from fuyun.services.migration import batch, service
from fuyun.services.migration.plan import Target
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Host, MigrationBatch, Network, SecurityGroup, Tenant, Vm, Workflow
from fuyun.store.types import utcnow
from fuyun.telemetry.bindings import load_bindings
from fuyun.telemetry.dbstore import DatabaseFlowStore
from fuyun.telemetry.rollup import TrafficRow, bucket_of, to_time

BIG = 10**9
BATCH = 200  # VMs per create call and per network
PARTNER = "starfish-games"  # the partner whose pages are measured
PARTNERS = ((PARTNER, "s1.medium", 30), ("qzone-apps", "s1.small", 40))
MOVES = 6  # live migrations in the history
TRAFFIC_MINUTES = 30
# (name, [(direction, protocol, port_min, port_max, remote_cidr, remote_group)])
SECURITY_GROUPS = (
    (
        "web",
        [
            ("ingress", "tcp", 80, 443, "0.0.0.0/0", None),
            ("ingress", "tcp", 22, 22, "203.0.113.0/24", None),
            ("ingress", "icmp", None, None, "0.0.0.0/0", None),
            ("egress", "any", None, None, None, None),
        ],
    ),
    (
        "db",
        [
            ("ingress", "tcp", 5432, 5432, None, "web"),
            ("ingress", "tcp", 6379, 6379, None, "web"),
            ("ingress", "tcp", 22, 22, "203.0.113.0/24", None),
            ("egress", "tcp", 443, 443, "0.0.0.0/0", None),
        ],
    ),
    (
        "ops",
        [("ingress", "tcp", p, p, "198.51.100.0/24", None) for p in (22, 9100, 9090, 3000)]
        + [("ingress", "udp", 161, 162, "198.51.100.0/24", None)],
    ),
)


def _partner_policy(tenant_id: uuid.UUID, db: Database, rt: Runtime) -> None:
    """Security groups with rules, QoS policies and a server group, before any VM."""
    for name, rules in SECURITY_GROUPS:
        group = policy.create_group(db, SYSTEM, name=name, tenant_id=tenant_id)
        for direction, proto, lo, hi, cidr, remote in rules:
            policy.add_rule(
                db,
                SYSTEM,
                group.id,
                policy.RuleSpec(direction, 4, proto, lo, hi, cidr, remote, f"{proto} {lo}"),
            )
    for name, guarantee, ceiling in (("gold", 200, 1000), ("silver", 50, 500)):
        spec = qos.PolicySpec(name=name, guarantee_mbps=guarantee, ceiling_mbps=ceiling)
        qos.create_policy(db, SYSTEM, spec, tenant_id=tenant_id)
    aggregate = qos.PolicySpec(name="aggregate", scope="tenant", ceiling_mbps=10_000)
    qos.create_policy(db, SYSTEM, aggregate, tenant_id=tenant_id)
    groups.create_group(
        db, SYSTEM, name="ha", policy="anti-affinity", level="host", tenant_id=tenant_id
    )


def _people(db: Database, tenant_id: uuid.UUID, name: str) -> None:
    """An admin (who signs in), members and a viewer; each with API tokens."""
    for username, role in (
        (f"{name}-admin", Role.TENANT_ADMIN),
        *((f"{name}-dev{i}", Role.TENANT_MEMBER) for i in range(1, 4)),
        (f"{name}-audit", Role.VIEWER),
    ):
        user = identity.create_user(
            db, SYSTEM, username=username, role=role, tenant_id=tenant_id,
            password=f"{name}-password",
        )  # fmt: skip
        for purpose in ("ci", "terraform"):
            identity.create_token(db, SYSTEM, user_id=user.id, name=purpose)


def _tenant(db: Database, rt: Runtime, name: str, flavor: str, count: int, partner: bool) -> None:
    limits = {"vms": BIG, "vcpus": BIG, "ram_mb": BIG, "ips": BIG, "bandwidth_mbps": BIG}
    tenant = tenants.create_tenant(db, SYSTEM, name=name, limits=limits)
    _people(db, tenant.id, name)
    if partner:
        _partner_policy(tenant.id, db, rt)
    ctx = networks.Networking(db=db, settings=rt.settings)
    left, index = count, 0
    while left > 0:
        # One network per batch: a routed-CLOS module confines a VLAN to one ToR.
        size = min(left, BATCH)
        index += 1
        net = networks.create_network(
            ctx,
            SYSTEM,
            networks.NetworkRequest(name=f"net-{index}", prefix_len=23, tenant_id=tenant.id),
        )
        vms.create_vms(
            rt,
            SYSTEM,
            vms.VmRequest(
                name=f"{name}-{index}",
                flavor=flavor,
                count=size,
                tenant_id=tenant.id,
                networks=(str(net.id),),
                strategy="spread",
                security_groups=("web", "db") if partner else (),
                qos_policy="silver" if partner else None,
                group="ha" if partner and index == 1 else None,
            ),
        )
        left -= size
    if partner:
        qos.set_tenant_policy(rt, SYSTEM, tenant.id, "aggregate")


def _history(db: Database, rt: Runtime) -> None:
    """Live migrations of the partner's VMs, then one host evacuated as a batch."""
    partner_vms = _vms_of(db, PARTNER)
    for vm in partner_vms[:MOVES]:
        service.migrate(rt, SYSTEM, vm.id, Target(), raise_error=False)
    host = _busiest_host(db)
    batch.start(rt, SYSTEM, "evacuate-host", str(host), background=False)
    inventory.set_host_state(db, SYSTEM, host, HostState.ACTIVE)


def _traffic(db: Database) -> None:
    """Half an hour of one-minute samples for every VM port (what the collector writes)."""
    now = bucket_of(utcnow().timestamp(), 60)
    rows = [
        TrafficRow(
            10,
            to_time(now - 60 * k),
            b.tenant_id,
            b.vm_id,
            b.network_id,
            (n % 97 + 1) * 10**6 * k,
            (n % 13 + 1) * 10**5 * k,
            1000 * k,
            100 * k,
            10,
        )
        for n, b in enumerate(load_bindings(db)[0])
        for k in range(1, TRAFFIC_MINUTES + 1)
    ]
    DatabaseFlowStore(db).write(rows, [])


def seed(db: Database, rt: Runtime, load_vms: int) -> None:
    bootstrap(db, rt.settings, rt.driver, fabric=rt.settings.extra["fabric"], runtime=rt)
    for name, flavor, count in PARTNERS:
        _tenant(db, rt, name, flavor, count, partner=True)
    _tenant(db, rt, "load", "s1.small", load_vms, partner=False)
    _history(db, rt)
    hosts = inventory.list_objects(db, SYSTEM, "host", limit=40).items
    for host in hosts[::8]:
        inventory.set_host_state(db, SYSTEM, host.id, HostState.MAINTENANCE)
    with db.read_session() as s:
        busy = list(s.scalars(select(Host.name).where(Host.vm_count > 0).limit(4)))
    for name in busy:
        agents.issue_credential(db, SYSTEM, name)
    _traffic(db)


def sync_driver(db: Database, rt: Runtime) -> None:
    """The fake hypervisor forgets its instances with the process: tell it the store's.

    Then one instance on the measured host stops behind the store's back, so the host
    page has a drift to show (as after a hypervisor crash).
    """
    resync_driver(db, rt.driver)
    busiest = _busiest_host(db)
    with db.read_session() as s:
        host_name = s.get(Host, busiest).name  # type: ignore[union-attr]
        victim = s.scalars(select(Vm.id).where(Vm.host_id == busiest).limit(1)).first()
    if victim is not None:
        rt.driver.stop(host_name, victim)


def _vms_of(db: Database, tenant: str) -> list[Vm]:
    with db.read_session() as s:
        return list(
            s.scalars(
                select(Vm)
                .join(Tenant, Tenant.id == Vm.tenant_id)
                .where(Tenant.name == tenant, Vm.state == VmState.ACTIVE.value)
                .order_by(Vm.name)
            )
        )


def _busiest_host(db: Database) -> uuid.UUID:
    with db.read_session() as s:
        found = s.scalars(
            select(Host.id)
            .where(Host.state == HostState.ACTIVE.value)
            .order_by(Host.vm_count.desc(), Host.name)
            .limit(1)
        ).first()
    assert found is not None, "no active host"
    return found


@dataclass(frozen=True)
class World:
    """The objects whose pages are measured."""

    partner_vm: uuid.UUID
    partner_vm_name: str
    partner_network: uuid.UUID
    partner_sg: uuid.UUID
    partner_workflow: uuid.UUID
    partner_tenant: uuid.UUID
    module: uuid.UUID
    host: uuid.UUID
    batch: uuid.UUID
    operator_workflow: uuid.UUID


def resolve(db: Database) -> World:
    vm = _vms_of(db, PARTNER)[0]
    with db.read_session() as s:
        tenant = s.scalars(select(Tenant).where(Tenant.name == PARTNER)).one()
        network = s.scalars(
            select(Network.id).where(Network.tenant_id == tenant.id).order_by(Network.name)
        ).first()
        sg = s.scalars(
            select(SecurityGroup.id).where(
                SecurityGroup.tenant_id == tenant.id, SecurityGroup.name == "db"
            )
        ).one()
        flow = s.scalars(
            select(Workflow.id).where(Workflow.tenant_id == tenant.id).limit(1)
        ).first()
        any_flow = s.scalars(select(Workflow.id).order_by(Workflow.created_at.desc())).first()
        moved = s.scalars(select(MigrationBatch.id)).first()
        host = s.get(Host, _busiest_host(db))
    assert network and flow and any_flow and moved and host, "the store was not seeded"
    return World(
        vm.id, vm.name, network, sg, flow, tenant.id, host.module_id, host.id, moved, any_flow
    )
