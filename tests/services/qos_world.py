"""A small data center with one partner, a network and a runtime, for QoS service tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services import networks, tenants, vms
from fuyun.services.bootstrap import bootstrap
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Host, Quota, Switch, Vm

MODULE = "sz1-m01"
TOR = "sz1-m01-t01"
H1, H2 = f"{TOR}-h01", f"{TOR}-h02"
OTHER_TOR_HOST = "sz1-m01-t02-h01"


@dataclass
class World:
    db: Database
    rt: Runtime
    tenant_id: uuid.UUID

    def vm(self, name: str, host: str, **kw: object) -> Vm:
        created = vms.create_vms(
            self.rt,
            SYSTEM,
            vms.VmRequest(
                name=name,
                flavor="s1.small",
                host=host,
                networks=("net",),
                tenant_id=self.tenant_id,
                **kw,  # type: ignore[arg-type]
            ),
        )
        return created.vms[0]

    def host(self, name: str) -> Host:
        with self.db.read_session() as s:
            host = s.scalar(select(Host).where(Host.name == name))
            assert host is not None
            return host

    def tor(self, name: str = TOR) -> Switch:
        with self.db.read_session() as s:
            tor = s.scalar(select(Switch).where(Switch.name == name))
            assert tor is not None
            return tor

    def quota_used(self) -> int:
        with self.db.read_session() as s:
            q = s.get(Quota, self.tenant_id)
            assert q is not None
            return q.used_bandwidth_mbps

    def device(self, dtype: str, name: str) -> DeviceState | None:
        with self.db.read_session() as s:
            return s.scalar(
                select(DeviceState).where(
                    DeviceState.device_type == dtype,
                    DeviceState.device_name == name,
                    DeviceState.enforcement_point == "qos",
                )
            )

    def set_host_nic(self, name: str, mbps: int) -> None:
        with self.db.write_session() as s:
            s.execute(update(Host).where(Host.name == name).values(nic_mbps=mbps))
        self.rt.placement.invalidate()

    def set_tor_uplink(self, mbps: int, name: str = TOR) -> None:
        with self.db.write_session() as s:
            s.execute(update(Switch).where(Switch.name == name).values(uplink_mbps=mbps))
        self.rt.placement.invalidate()


def make_world(db: Database, *, bandwidth_quota: int = 100_000) -> World:
    bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small")
    tenant = tenants.create_tenant(
        db, SYSTEM, name="studio", limits={"bandwidth_mbps": bandwidth_quota, "vms": 200}
    )
    rt = Runtime(db, Settings(database_url=db.url), FakeComputeDriver())
    networks.create_network(
        networks.Networking(db=db, settings=rt.settings),
        SYSTEM,
        networks.NetworkRequest(name="net", prefix_len=24, module=MODULE, tenant_id=tenant.id),
    )
    return World(db, rt, tenant.id)
