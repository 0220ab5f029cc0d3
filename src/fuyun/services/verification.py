"""``fuyun verify``: reachability from compiled state, checked against intent."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select

from fuyun.domain.enums import EnforcementPoint
from fuyun.policy.ir import DevicePolicy, from_json
from fuyun.services.enforcement import all_hosts_with_ports, device_policies
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Tenant
from fuyun.verify.compare import Comparison, compare
from fuyun.verify.reachability import analyse


@dataclass(frozen=True)
class ReachPair:
    src_tenant: str
    dst_tenant: str
    src: str  # sample address of the class
    dst: str
    src_endpoints: int
    dst_endpoints: int
    services: list[str]
    path: str
    allowed_by: list[str]


@dataclass
class VerifyReport:
    endpoints: int = 0
    classes: int = 0
    pairs_checked: int = 0
    devices: int = 0
    reachable: list[ReachPair] = field(default_factory=list)
    cross_tenant: list[ReachPair] = field(default_factory=list)
    comparison: Comparison = field(default_factory=Comparison)
    tenants_reaching: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.comparison.leaks and not self.comparison.blocks and not self.cross_tenant


def verify(db: Database, principal: Principal, *, limit: int = 200) -> VerifyReport:
    """Analyse every device's compiled policy; compare with intent compiled afresh."""
    principal.require_operator()
    started = time.perf_counter()
    with db.read_session() as s:
        # Only security policy: QoS and port-map documents share the table, not the IR.
        rows = list(
            s.scalars(
                select(DeviceState).where(
                    DeviceState.enforcement_point.in_([e.value for e in EnforcementPoint])
                )
            )
        )
        compiled_devices = [from_json(r.ir) for r in rows if r.ir]
        intended_devices = [p for _, _, p in device_policies(s, all_hosts_with_ports(s))]
        names = dict(s.execute(select(Tenant.id, Tenant.name)).all())
    compiled = analyse(compiled_devices)
    # When every device holds exactly what intent compiles to, the intended analysis
    # would repeat the compiled one: skip it (the usual case, and half the work).
    intended = compiled if _same(compiled_devices, intended_devices) else analyse(intended_devices)
    report = VerifyReport(
        endpoints=compiled.endpoints(),
        classes=len(compiled.classes),
        pairs_checked=compiled.pairs_checked,
        devices=len(compiled_devices),
    )
    reaching: Counter[str] = Counter()
    for reach in compiled.reach.values():
        src_t, dst_t = reach.src.tenant_id, reach.dst.tenant_id
        pair = ReachPair(
            _name(names, src_t),
            _name(names, dst_t),
            reach.src.sample.ips[0] if reach.src.sample.ips else "",
            reach.dst.sample.ips[0] if reach.dst.sample.ips else "",
            len(reach.src.members),
            len(reach.dst.members),
            [str(x) for x in reach.services],
            reach.path,
            list(reach.allowed_by),
        )
        if src_t != dst_t:
            report.cross_tenant.append(pair)
        elif len(report.reachable) < limit:
            report.reachable.append(pair)
        reaching[_name(names, src_t)] += 1
    report.tenants_reaching = dict(reaching)
    report.comparison = compare(compiled, intended)
    report.seconds = time.perf_counter() - started
    return report


def _same(compiled: list[DevicePolicy], intended: list[DevicePolicy]) -> bool:
    """Whether the stored IR of every device equals what intent compiles to now."""
    if len(compiled) != len(intended):
        return False
    by_key = {(d.device, d.enforcement_point): d for d in compiled}
    return all(by_key.get((d.device, d.enforcement_point)) == d for d in intended)


def _name(names: dict[uuid.UUID, str], tenant_id: uuid.UUID) -> str:
    return names.get(tenant_id, str(tenant_id))
