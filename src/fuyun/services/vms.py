"""The VM self-service verbs: apply, adjust, return, power — each a persisted workflow.

This module validates at the edge of the use case (names, counts, who may pin a
host, which networks and groups the caller may use), then hands the work to a
workflow (:mod:`fuyun.services.provision`) and audits the outcome: a refusal or a
rollback is recorded as a failure with its reason.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.domain.enums import AuditResult
from fuyun.domain.errors import Forbidden, FuyunError, InvalidInput, NotFound
from fuyun.domain.vm_states import VmState
from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Demand
from fuyun.services import qos
from fuyun.services.audit import record
from fuyun.services.inventory import resolve_ref
from fuyun.services.pagination import Page, paginate, prefix_filter
from fuyun.services.policy import resolve_group
from fuyun.services.principal import Principal
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Flavor, Host, Network, Port, QosPolicy, ServerGroup, Tenant, Vm
from fuyun.workflows.engine import Outcome

VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_COUNT = 500
STRATEGIES = ("pack", "spread")


@dataclass(frozen=True)
class VmRequest:
    name: str
    flavor: str
    image: str = "debian-12"
    count: int = 1
    host: str | None = None
    tenant_id: uuid.UUID | None = None
    networks: tuple[str, ...] = ()
    group: str | None = None
    strategy: str | None = None
    security_groups: tuple[str, ...] = ()
    qos_policy: str | None = None


@dataclass(frozen=True)
class Created:
    vms: list[Vm]
    workflow_id: uuid.UUID


def _finish(
    rt: Runtime,
    principal: Principal,
    action: str,
    outcome: Outcome,
    tenant_id: uuid.UUID | None,
    object_id: str | None,
    detail: dict[str, object],
) -> None:
    """Audit a workflow's end; re-raise its error if it rolled back."""
    detail = {**detail, "workflow_id": str(outcome.id)}
    if outcome.error is not None:
        detail.update(error=outcome.error.code, message=outcome.error.message)
        record(
            rt.db,
            principal,
            action,
            "vm",
            tenant_id=tenant_id,
            object_id=object_id,
            result=AuditResult.FAILURE,
            detail=detail,
        )
        raise outcome.error
    record(
        rt.db,
        principal,
        action,
        "vm",
        tenant_id=tenant_id,
        object_id=object_id,
        result=AuditResult.SUCCESS,
        detail=detail,
    )


def _refuse(
    rt: Runtime,
    principal: Principal,
    action: str,
    tenant_id: uuid.UUID | None,
    exc: FuyunError,
    object_id: str | None = None,
) -> None:
    record(
        rt.db,
        principal,
        action,
        "vm",
        tenant_id=tenant_id,
        object_id=object_id,
        result=AuditResult.FAILURE,
        detail={"error": exc.code, "message": exc.message},
    )


def create_vms(rt: Runtime, principal: Principal, req: VmRequest) -> Created:
    """Create ``count`` VMs: all of them, placed, addressed and booted — or none."""
    principal.require_write()
    tenant_id = req.tenant_id if principal.is_operator else principal.tenant_id
    if tenant_id is None:
        raise InvalidInput("tenant_id is required when an operator creates a VM", field="tenant_id")
    try:
        payload = _validate_create(rt.db, principal, tenant_id, req)
    except FuyunError as exc:
        _refuse(rt, principal, "vm.create", tenant_id, exc)
        raise
    outcome = rt.engine.execute(
        "vm.create", payload, tenant_id=tenant_id, actor=principal.username, subject=req.name
    )
    ids = [uuid.UUID(v) for v in outcome.data.get("vms", [])]
    _finish(
        rt,
        principal,
        "vm.create",
        outcome,
        tenant_id,
        str(ids[0]) if len(ids) == 1 else None,
        {"name": req.name, "count": req.count, "flavor": req.flavor, "vms": [str(i) for i in ids]},
    )
    with rt.db.read_session() as s:
        rows = {vm.id: vm for vm in s.scalars(select(Vm).where(Vm.id.in_(ids)))}
    return Created(vms=[rows[i] for i in ids], workflow_id=outcome.id)


def _validate_create(
    db: Database, principal: Principal, tenant_id: uuid.UUID, req: VmRequest
) -> dict[str, object]:
    if not VM_NAME.match(req.name):
        raise InvalidInput("name must be 1-63 letters, digits or ._-", field="name")
    if not 1 <= req.count <= MAX_COUNT:
        raise InvalidInput(f"count must be between 1 and {MAX_COUNT}", field="count")
    if req.strategy is not None and req.strategy not in STRATEGIES:
        raise InvalidInput("strategy must be pack or spread", field="strategy")
    with db.read_session() as s:
        if s.get(Tenant, tenant_id) is None:
            raise NotFound("no such tenant", field="tenant_id")
        flavor_id = resolve_ref(s, Flavor, req.flavor, "flavor")
        host_id = None
        if req.host is not None:
            if not principal.is_operator:
                raise Forbidden("only an operator may pin a VM to a host", field="host")
            host_id = resolve_ref(s, Host, req.host, "host")
        networks = []
        for ref in req.networks:
            net = _tenant_network(s, tenant_id, ref)
            if str(net.id) in networks:
                raise InvalidInput(f"network {ref} is given twice", field="networks")
            networks.append(str(net.id))
        for ref in req.security_groups:
            resolve_group(s, tenant_id, ref, "security_groups")
        group_id = None
        if req.group is not None:
            group = _tenant_group(s, tenant_id, req.group)
            group_id = str(group.id)
        qos_policy_id = None
        if req.qos_policy is not None:
            if not networks:
                raise InvalidInput("a QoS policy needs a network to shape", field="qos_policy")
            qos_policy_id = str(qos.resolve(s, tenant_id, req.qos_policy, "qos_policy", "port").id)
    payload: dict[str, object] = {
        "tenant_id": str(tenant_id),
        "name": req.name,
        "count": req.count,
        "flavor_id": str(flavor_id),
        "image": req.image,
        "networks": networks,
        "group_id": group_id,
        "host_id": str(host_id) if host_id else None,
        "host_name": req.host,
        "security_groups": list(req.security_groups),
        "qos_policy_id": qos_policy_id,
    }
    if req.strategy:
        payload["strategy"] = req.strategy
    return payload


def _tenant_network(s: Session, tenant_id: uuid.UUID, ref: str) -> Network:
    stmt = select(Network).where(Network.tenant_id == tenant_id)
    try:
        net = s.scalar(stmt.where(Network.id == uuid.UUID(ref)))
    except ValueError:
        net = s.scalar(stmt.where(Network.name == ref))
    if net is None:
        raise NotFound(f"no network '{ref}'", field="networks")
    return net


def _tenant_group(s: Session, tenant_id: uuid.UUID, ref: str) -> ServerGroup:
    stmt = select(ServerGroup).where(ServerGroup.tenant_id == tenant_id)
    try:
        group = s.scalar(stmt.where(ServerGroup.id == uuid.UUID(ref)))
    except ValueError:
        group = s.scalar(stmt.where(ServerGroup.name == ref))
    if group is None:
        raise NotFound(f"no server group '{ref}'", field="group")
    return group


def _visible_vm(principal: Principal, vm: Vm | None) -> Vm:
    if (
        vm is None
        or vm.state == VmState.DELETED.value
        or not principal.may_see_tenant(vm.tenant_id)
    ):
        raise NotFound("no such VM", field="vm_id")
    return vm


def get_vm(db: Database, principal: Principal, vm_id: uuid.UUID) -> Vm:
    with db.read_session() as session:
        return _visible_vm(principal, session.get(Vm, vm_id))


def count_by_state(db: Database, principal: Principal) -> dict[str, int]:
    """Live VMs by state, for the caller's tenant (or all, for operators): one GROUP BY."""
    counted = select(Vm.state, func.count()).where(Vm.state != VmState.DELETED.value)
    stmt = principal.scope(counted, Vm.tenant_id).group_by(Vm.state)
    with db.read_session() as s:
        return {state: n for state, n in s.execute(stmt).all()}


def list_vms(
    db: Database,
    principal: Principal,
    *,
    state: str | None = None,
    name_prefix: str | None = None,
    host: str | None = None,
    tenant_id: uuid.UUID | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[Vm]:
    stmt = principal.scope(select(Vm), Vm.tenant_id)
    with db.read_session() as session:
        if state:
            if state not in VmState.__members__.values():
                raise InvalidInput(f"unknown state '{state}'", field="state")
            stmt = stmt.where(Vm.state == state)
        else:
            stmt = stmt.where(Vm.state != VmState.DELETED.value)
        if name_prefix:
            stmt = stmt.where(prefix_filter(Vm.name, name_prefix))
        if tenant_id is not None:
            stmt = stmt.where(Vm.tenant_id == tenant_id)
        if host:
            if not principal.sees_everything:
                raise Forbidden("only operators may filter by host", field="host")
            stmt = stmt.where(Vm.host_id == resolve_ref(session, Host, host, "host"))
        return paginate(session, stmt, sort=Vm.name, id_column=Vm.id, limit=limit, cursor=cursor)


def _run_on_vm(
    rt: Runtime,
    principal: Principal,
    vm_id: uuid.UUID,
    kind: str,
    action: str,
    payload: dict[str, object],
) -> Vm:
    principal.require_write()
    with rt.db.read_session() as s:
        try:
            vm = _visible_vm(principal, s.get(Vm, vm_id))
        except NotFound as exc:
            _refuse(rt, principal, action, principal.tenant_id, exc, str(vm_id))
            raise
        tenant_id = vm.tenant_id
    outcome = rt.engine.execute(
        kind,
        {"vm_id": str(vm_id), **payload},
        tenant_id=tenant_id,
        actor=principal.username,
        subject=str(vm_id),
    )
    _finish(
        rt, principal, action, outcome, tenant_id, str(vm_id), {k: v for k, v in payload.items()}
    )
    with rt.db.read_session() as s:
        vm = s.get(Vm, vm_id)
        assert vm is not None
        return vm


def power(rt: Runtime, principal: Principal, vm_id: uuid.UUID, verb: str) -> Vm:
    """start, stop or reboot a VM."""
    return _run_on_vm(rt, principal, vm_id, "vm.power", f"vm.{verb}", {"verb": verb})


def delete_vm(rt: Runtime, principal: Principal, vm_id: uuid.UUID) -> Vm:
    """Return a VM: the instance goes; ports, host capacity and quota are given back."""
    return _run_on_vm(rt, principal, vm_id, "vm.delete", "vm.delete", {})


def resize_vm(rt: Runtime, principal: Principal, vm_id: uuid.UUID, flavor: str) -> Vm:
    """Give a VM another flavor; when it no longer fits on its host, move it first.

    The move is planned for the new size (a live migration keeping its addresses);
    if no host can take it, the resize is refused (409) with the plan's reasons.
    """
    with rt.db.read_session() as s:
        flavor_id = resolve_ref(s, Flavor, flavor, "flavor")
        vm = _visible_vm(principal, s.get(Vm, vm_id))
        row = s.get(Flavor, flavor_id)
        host = s.get(Host, vm.host_id) if vm.host_id else None
        assert row is not None
        new = Demand(row.vcpus, row.ram_mb, row.disk_gb, row.bandwidth_mbps)
        moves = host is not None and not _fits(rt, host, vm, new)
    if moves:
        principal.require_write()
        from fuyun.services.migration import service as migration
        from fuyun.services.migration.plan import Target

        migration.move(rt, principal, vm_id, Target(), demand=new)
    return _run_on_vm(
        rt,
        principal,
        vm_id,
        "vm.resize",
        "vm.resize",
        {"flavor_id": str(flavor_id), "flavor": flavor},
    )


def _fits(rt: Runtime, host: Host, vm: Vm, new: Demand) -> bool:
    """Whether ``vm`` at size ``new`` fits on ``host`` beside the VMs already there."""
    cpu, ram = rt.settings.cpu_allocation_ratio, rt.settings.ram_allocation_ratio
    return (
        host.used_vcpus - vm.vcpus + new.vcpus <= host.vcpus * cpu
        and host.used_ram_mb - vm.ram_mb + new.ram_mb <= host.ram_mb * ram
        and host.used_disk_gb - vm.disk_gb + new.disk_gb <= host.disk_gb
        and host.used_bandwidth_mbps - vm.bandwidth_mbps + new.bandwidth_mbps <= host.nic_mbps
    )


def attach_network(
    rt: Runtime, principal: Principal, vm_id: uuid.UUID, network: str, ip: str | None = None
) -> Vm:
    """Add a NIC on one of the tenant's networks."""
    with rt.db.read_session() as s:
        vm = _visible_vm(principal, s.get(Vm, vm_id))
        net = _tenant_network(s, vm.tenant_id, network)
    return _run_on_vm(
        rt, principal, vm_id, "vm.attach", "vm.attach", {"network_id": str(net.id), "ip": ip}
    )


def detach_port(rt: Runtime, principal: Principal, vm_id: uuid.UUID, port_id: uuid.UUID) -> Vm:
    with rt.db.read_session() as s:
        _visible_vm(principal, s.get(Vm, vm_id))
        port = s.get(Port, port_id)
        if port is None or port.vm_id != vm_id:
            raise NotFound("no such port on this VM", field="port_id")
    return _run_on_vm(rt, principal, vm_id, "vm.detach", "vm.detach", {"port_id": str(port_id)})


@dataclass(frozen=True)
class Explanation:
    vm: Vm
    host: str | None
    placement: dict[str, object]
    verdicts: list[tuple[str, str | None]]


def explain(
    rt: Runtime, principal: Principal, vm_id: uuid.UUID, host: str | None = None
) -> Explanation:
    """Why a VM runs where it does, and (with ``host``) why not on another host."""
    principal.require_operator()
    with rt.db.read_session() as s:
        vm = _visible_vm(principal, s.get(Vm, vm_id))
        current = s.get(Host, vm.host_id).name if vm.host_id else None  # type: ignore[union-attr]
        verdicts: list[tuple[str, str | None]] = []
        if host is not None:
            host_id = resolve_ref(s, Host, host, "host")
            nets = list(
                s.scalars(
                    select(Network)
                    .join(Port, Port.network_id == Network.id)
                    .where(Port.vm_id == vm.id)
                )
            )
            needs = rt.placement.network_needs(s, nets)
            group = s.get(ServerGroup, vm.group_id) if vm.group_id else None
            groups = (rt.placement.group_need(s, group),) if group else ()
            guaranteed = sum(
                s.scalars(
                    select(QosPolicy.guarantee_mbps)
                    .join(Port, Port.qos_policy_id == QosPolicy.id)
                    .where(Port.vm_id == vm.id)
                )
            )
            demand = Demand(vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps, guaranteed)
            req = Request(demand, tuple(needs), groups)
            sched = rt.placement.scheduler()
            verdicts = sched.verdicts(req, sched.cluster.hosts[host_id])
        return Explanation(
            vm=vm, host=current, placement=dict(vm.placement or {}), verdicts=verdicts
        )
