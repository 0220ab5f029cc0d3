"""``fuyun verify``: reachability from compiled state, checked against intent."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.domain.enums import EnforcementPoint
from fuyun.policy.ir import DevicePolicy, from_json
from fuyun.services import reports
from fuyun.services.address_sets import hydrate_all
from fuyun.services.enforcement import all_hosts_with_ports, device_policies
from fuyun.services.leak_paths import approved_paths
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
    # Cross-tenant pairs an approved route leak joins: intended, each naming its leak.
    via_route_leaks: list[ReachPair] = field(default_factory=list)
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
        # Both sides with their address sets' members as stored now: the compiled IR
        # and a fresh compile carry set names only.
        compiled_devices = hydrate_all(s, [from_json(r.ir) for r in rows if r.ir])
        intended_devices = hydrate_all(
            s, [p for _, _, p in device_policies(s, all_hosts_with_ports(s))]
        )
        names = dict(s.execute(select(Tenant.id, Tenant.name)).all())
        leaks = approved_paths(s)  # the only paths between two VRFs
    compiled = analyse(compiled_devices, leaks)
    # When every device holds exactly what intent compiles to, the intended analysis
    # would repeat the compiled one: skip it (the usual case, and half the work).
    intended = (
        compiled if _same(compiled_devices, intended_devices) else analyse(intended_devices, leaks)
    )
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
        if src_t != dst_t and reach.leak:
            report.via_route_leaks.append(pair)
        elif src_t != dst_t:
            report.cross_tenant.append(pair)
        elif len(report.reachable) < limit:
            report.reachable.append(pair)
        reaching[_name(names, src_t)] += 1
    report.tenants_reaching = dict(reaching)
    report.comparison = compare(compiled, intended)
    report.seconds = time.perf_counter() - started
    return report


KIND = "verify"
SECURITY_POINTS = [e.value for e in EnforcementPoint]


def compiled_basis(s: Session) -> dict[str, Any]:
    """The compiled state a verification reads: device count and summed generations.

    Every recompile of a device bumps its desired generation, so any change to what
    is compiled changes this pair (devices removed and others bumped by as much
    would not, which no compile does).
    """
    count, generations = s.execute(
        select(func.count(), func.coalesce(func.sum(DeviceState.desired_generation), 0)).where(
            DeviceState.enforcement_point.in_(SECURITY_POINTS)
        )
    ).one()
    return {"devices": int(count), "generations": int(generations)}


def document(rep: VerifyReport, limit: int) -> dict[str, Any]:
    """The report as JSON: the shape of ``GET /verify`` and of a stored run."""

    def diff(d: Any) -> dict[str, Any]:
        return {
            "src_ip": d.src_ip,
            "dst_ip": d.dst_ip,
            "tenant_id": str(d.tenant_id),
            "services": [str(x) for x in d.services],
            "allowed_by": list(d.allowed_by),
        }

    return {
        "ok": rep.ok,
        "endpoints": rep.endpoints,
        "classes": rep.classes,
        "pairs_checked": rep.pairs_checked,
        "devices": rep.devices,
        "seconds": round(rep.seconds, 3),
        "cross_tenant": [asdict(p) for p in rep.cross_tenant],
        "via_route_leaks": [asdict(p) for p in rep.via_route_leaks],
        "leaks": [diff(d) for d in rep.comparison.leaks[:limit]],
        "blocks": [diff(d) for d in rep.comparison.blocks[:limit]],
        "reachable": [asdict(p) for p in rep.reachable],
    }


def run(db: Database, principal: Principal, *, limit: int = 200) -> reports.Run:
    """Verify now and store the result (with the compiled state it was computed from)."""
    principal.require_operator()
    with db.read_session() as s:
        basis = compiled_basis(s)  # read first: a change during the run makes it stale
    rep = verify(db, principal, limit=limit)
    doc = document(rep, limit)
    summary = {
        "ok": rep.ok,
        "devices": rep.devices,
        "endpoints": rep.endpoints,
        "cross_tenant": len(rep.cross_tenant),
        "leaks": len(rep.comparison.leaks),
        "blocks": len(rep.comparison.blocks),
    }
    return reports.save(
        db,
        principal,
        KIND,
        basis=basis,
        parameters={"limit": limit},
        summary=summary,
        document=doc,
        seconds=rep.seconds,
    )


def latest(db: Database, principal: Principal) -> reports.Run | None:
    """The latest stored verification, with whether the compiled state changed since."""
    return reports.latest(db, principal, KIND, lambda s, _stored: compiled_basis(s))


def _same(compiled: list[DevicePolicy], intended: list[DevicePolicy]) -> bool:
    """Whether the stored IR of every device equals what intent compiles to now."""
    if len(compiled) != len(intended):
        return False
    by_key = {(d.device, d.enforcement_point): d for d in compiled}
    return all(by_key.get((d.device, d.enforcement_point)) == d for d in intended)


def _name(names: dict[uuid.UUID, str], tenant_id: uuid.UUID) -> str:
    return names.get(tenant_id, str(tenant_id))
