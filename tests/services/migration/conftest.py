"""A `small` fabric with two tenants' networks and VMs to move, and a runtime with drivers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import select

from fuyun.config import Settings
from fuyun.domain.enums import FabricKind, L2Technology
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.drivers.network.sim import SimNetworkDriver
from fuyun.fabric.generator import PRESETS, generate
from fuyun.fabric.loader import load_into_store
from fuyun.fabric.spec import FabricSpec
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Host, Vm


@dataclass
class World:
    rt: Runtime
    tenant_id: uuid.UUID
    nets: dict[str, str]

    @property
    def db(self) -> Database:
        return self.rt.db

    def vm(
        self, name: str, host: str, network: str = "web", group: str | None = None, **kw: object
    ) -> Vm:
        made = vms.create_vms(
            self.rt,
            SYSTEM,
            vms.VmRequest(
                name=name,
                flavor=str(kw.get("flavor", "s1.small")),
                tenant_id=self.tenant_id,
                networks=(self.nets[network],),
                host=host,
                group=group,
                security_groups=tuple(kw.get("security_groups", ())),  # type: ignore[arg-type]
                qos_policy=kw.get("qos_policy"),  # type: ignore[arg-type]
            ),
        )
        return made.vms[0]

    def host_of(self, vm_id: uuid.UUID) -> str:
        with self.db.read_session() as s:
            vm = s.get(Vm, vm_id)
            assert vm is not None and vm.host_id is not None
            host = s.get(Host, vm.host_id)
            assert host is not None
            return host.name


def small_spec(*, both_switched: bool = False, modules_per_site: int = 1) -> FabricSpec:
    """The `small` preset; optionally with its routed module switched, or two per site."""
    params = PRESETS["small"]
    spec = generate(replace(params, modules_per_site=modules_per_site))
    if both_switched:
        spec = spec.model_copy(
            update={
                "modules": [
                    m.model_copy(
                        update={
                            "fabric_kind": FabricKind.SWITCHED_CLOS,
                            "l2_technology": L2Technology.VPC,
                        }
                    )
                    for m in spec.modules
                ]
            }
        )
    return spec


def make_world(db: Database, spec: FabricSpec, homes: dict[str, str]) -> World:
    settings = Settings(database_url=db.url, migration_converge_timeout_s=1.0)
    with db.write_session() as s:
        load_into_store(s, spec)
    rt = Runtime(db, settings, FakeComputeDriver(), network=SimNetworkDriver())
    bootstrap(db, settings, rt.driver, fabric="small", runtime=rt)
    tenant = tenants.create_tenant(db, SYSTEM, name="studio")
    ctx = networks.Networking(db=db, settings=settings)
    nets = {}
    for i, (name, module) in enumerate(sorted(homes.items())):
        net = networks.create_network(
            ctx,
            SYSTEM,
            networks.NetworkRequest(
                name=name, cidr=f"10.{i + 1}.0.0/24", tenant_id=tenant.id, module=module
            ),
        )
        nets[name] = str(net.id)
    return World(rt, tenant.id, nets)


@pytest.fixture
def world(db: Database) -> World:
    """`small`: web in the switched module sz1-m01, db in the routed module sh1-m01."""
    return make_world(db, small_spec(), {"web": "sz1-m01", "db": "sh1-m01"})


def host_names(db: Database, prefix: str) -> list[str]:
    with db.read_session() as s:
        return sorted(s.scalars(select(Host.name).where(Host.name.startswith(prefix))))
