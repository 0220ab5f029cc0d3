"""First start: the schema, the fabric, an operator account, and (``--demo``) partners.

Idempotent: a second start finds the operator and the fabric in place and only
mints a fresh operator token, so restarting ``fuyun serve`` never duplicates or
resets anything.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.domain.enums import Role
from fuyun.domain.errors import Conflict
from fuyun.drivers.compute import ComputeDriver
from fuyun.fabric.generator import PRESETS, generate
from fuyun.fabric.loader import load_into_store
from fuyun.fabric.spec import FabricSpec
from fuyun.fabric.yamlio import load_fabric
from fuyun.services import identity, networks, tenants, vms
from fuyun.services.networks import Networking
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade
from fuyun.store.models import Host, Tenant, User

ADMIN = "admin"
SERVE_TOKEN_TTL_S = 30 * 86400

DEMO_TENANTS = (
    # name, display name, quotas, [(vm name, flavor, count)]
    (
        "starfish-games",
        "Starfish Games",
        {"vms": 50, "vcpus": 200, "bandwidth_mbps": 5000},
        [("web", "s1.medium", 6), ("db", "s1.large", 2)],
    ),
    (
        "qzone-apps",
        "QZone Apps",
        {"vms": 40, "vcpus": 120, "bandwidth_mbps": 2000},
        [("api", "s1.small", 8)],
    ),
    (
        "pay-gateway",
        "Pay Gateway",
        {"vms": 20, "vcpus": 80, "bandwidth_mbps": 4000},
        [("core", "s1.large", 4)],
    ),
)


@dataclass(frozen=True)
class BootstrapResult:
    token: str
    admin_password: str | None  # only on the very first start
    fabric_loaded: bool
    hosts: int
    demo_vms: int


def resolve_fabric(fabric: str) -> FabricSpec:
    """A preset name, or a path to a fabric YAML file."""
    if fabric in PRESETS:
        return generate(fabric)
    return load_fabric(Path(fabric))


def bootstrap(
    db: Database,
    settings: Settings,
    driver: ComputeDriver,
    *,
    fabric: str,
    demo: bool = False,
    runtime: Runtime | None = None,
) -> BootstrapResult:
    upgrade(db.engine)
    fabric_loaded = False
    with db.write_session() as session:
        hosts = session.scalar(select(func.count()).select_from(Host)) or 0
        if hosts == 0:
            spec = resolve_fabric(fabric)
            load_into_store(session, spec)
            fabric_loaded = True
    password: str | None = None
    with db.read_session() as session:
        admin = session.scalar(select(User).where(User.username == ADMIN))
    if admin is None:
        password = secrets.token_urlsafe(12)
        admin = identity.create_user(
            db, SYSTEM, username=ADMIN, role=Role.OPERATOR, tenant_id=None, password=password
        )
    principal = identity.principal_of(admin)
    issued = identity.create_token(db, principal, name="serve", expires_in_s=SERVE_TOKEN_TTL_S)
    demo_vms = seed_demo(runtime or Runtime(db, settings, driver)) if demo else 0
    with db.read_session() as session:
        hosts = session.scalar(select(func.count()).select_from(Host)) or 0
    return BootstrapResult(
        token=issued.secret,
        admin_password=password,
        fabric_loaded=fabric_loaded,
        hosts=hosts,
        demo_vms=demo_vms,
    )


def seed_demo(rt: Runtime) -> int:
    """A few partner tenants with admins, a network each and running VMs; skipped if there.

    Each tenant's admin gets the password ``<tenant>-demo`` so a newcomer can
    sign in as a partner at once.
    """
    ctx = Networking(db=rt.db, settings=rt.settings)
    made = 0
    for name, display, limits, fleet in DEMO_TENANTS:
        with rt.db.read_session() as session:
            if session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
                continue
        tenant = tenants.create_tenant(
            rt.db, SYSTEM, name=name, display_name=display, limits=limits
        )
        identity.create_user(
            rt.db,
            SYSTEM,
            username=f"{name}-admin",
            role=Role.TENANT_ADMIN,
            tenant_id=tenant.id,
            password=f"{name}-demo",
        )
        net = networks.create_network(
            ctx, SYSTEM, networks.NetworkRequest(name="default", prefix_len=24, tenant_id=tenant.id)
        )
        for vm_name, flavor, count in fleet:
            try:
                made += len(
                    vms.create_vms(
                        rt,
                        SYSTEM,
                        vms.VmRequest(
                            name=vm_name,
                            flavor=flavor,
                            count=count,
                            tenant_id=tenant.id,
                            networks=(str(net.id),),
                        ),
                    ).vms
                )
            except Conflict:  # a tiny fabric or tight quota: the demo makes do
                break
    return made


def resync_driver(db: Database, driver: ComputeDriver) -> int:
    """Make an in-memory driver hold what the store says runs (after a restart).

    A real hypervisor keeps its instances across a controller restart; the fake
    one forgets them, so it is handed the store's view, as an agent's full resync
    would do. The rows are streamed as column tuples, a few thousand at a time, so
    a million VMs never sit in memory as ORM entities (with their placement JSON)
    all at once; host names and images are shared, not copied per VM.
    """
    from fuyun.domain.vm_states import VmState
    from fuyun.drivers.compute import InstanceSpec
    from fuyun.store.models import Vm

    count = 0
    shared: dict[str, str] = {}
    with db.read_session() as session:
        rows = session.execute(
            select(Vm.id, Vm.name, Vm.vcpus, Vm.ram_mb, Vm.disk_gb, Vm.image, Vm.state, Host.name)
            .join(Host, Host.id == Vm.host_id)
            .where(
                Vm.state.in_(
                    [
                        VmState.BUILDING.value,
                        VmState.ACTIVE.value,
                        VmState.STOPPED.value,
                        VmState.MIGRATING.value,  # on its host of record until cut-over
                    ]
                )
            )
            .execution_options(yield_per=5000)
        )
        for vm_id, name, vcpus, ram_mb, disk_gb, image, state, host in rows:
            host = shared.setdefault(host, host)
            driver.create(
                InstanceSpec(
                    vm_id, name, host, vcpus, ram_mb, disk_gb, shared.setdefault(image, image)
                )
            )
            if state == VmState.STOPPED.value:
                driver.stop(host, vm_id)
            count += 1
    return count
