"""The VM lifecycle: apply (create), power verbs, and return (delete).

Each verb is one audited transaction. The compute driver is called inside it,
after the claims (quota, host) have been made; when the driver fails, instances
already made by this call are removed from the driver and the transaction rolls
back, so neither the store nor the hypervisor keeps a half-built VM.
"""

from __future__ import annotations

import re
import uuid
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.enums import HostState
from fuyun.domain.errors import CapacityExhausted, Forbidden, FuyunError, InvalidInput, NotFound
from fuyun.domain.vm_states import VmState, check_transition
from fuyun.drivers.compute import ComputeDriver, InstanceSpec
from fuyun.services import quotas
from fuyun.services.audit import mutation
from fuyun.services.capacity import Demand, claim_host, release_host
from fuyun.services.inventory import resolve_ref
from fuyun.services.pagination import Page, paginate
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import Flavor, Host, Tenant, Vm

VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_COUNT = 500
FIRST_FIT_CANDIDATES = 32


@dataclass(frozen=True)
class VmRequest:
    name: str
    flavor: str
    image: str = "debian-12"
    count: int = 1
    host: str | None = None
    tenant_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Compute:
    """What VM verbs need besides the store."""

    db: Database
    driver: ComputeDriver
    settings: Settings


def _demand(vm: Vm) -> Demand:
    return Demand(vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps)


def _instance(vm: Vm, host: Host) -> InstanceSpec:
    return InstanceSpec(
        vm_id=vm.id,
        name=vm.name,
        host=host.name,
        vcpus=vm.vcpus,
        ram_mb=vm.ram_mb,
        disk_gb=vm.disk_gb,
        image=vm.image,
    )


def create_vms(ctx: Compute, principal: Principal, req: VmRequest) -> list[Vm]:
    """Create ``count`` VMs: all of them, or none."""
    principal.require_write()
    tenant_id = req.tenant_id if principal.is_operator else principal.tenant_id
    if tenant_id is None:
        raise InvalidInput("tenant_id is required when an operator creates a VM", field="tenant_id")
    with mutation(ctx.db, principal, "vm.create", "vm", tenant_id=tenant_id) as m:
        s = m.session
        if not VM_NAME.match(req.name):
            raise InvalidInput("name must be 1-63 letters, digits or ._- ", field="name")
        if not 1 <= req.count <= MAX_COUNT:
            raise InvalidInput(f"count must be between 1 and {MAX_COUNT}", field="count")
        if s.get(Tenant, tenant_id) is None:
            raise NotFound("no such tenant", field="tenant_id")
        flavor = s.get(Flavor, resolve_ref(s, Flavor, req.flavor, "flavor"))
        assert flavor is not None
        pinned: Host | None = None
        if req.host is not None:
            if not principal.is_operator:
                raise Forbidden("only an operator may pin a VM to a host", field="host")
            pinned = s.get(Host, resolve_ref(s, Host, req.host, "host"))
        demand = Demand(flavor.vcpus, flavor.ram_mb, flavor.disk_gb, flavor.bandwidth_mbps)
        quotas.claim(
            s,
            tenant_id,
            vms=req.count,
            vcpus=demand.vcpus * req.count,
            ram_mb=demand.ram_mb * req.count,
            bandwidth_mbps=demand.bandwidth_mbps * req.count,
        )
        made: list[tuple[Vm, Host]] = []
        for i in range(req.count):
            name = req.name if req.count == 1 else f"{req.name}-{i + 1}"
            host = pinned or None
            if host is not None:
                if not claim_host(
                    s,
                    host.id,
                    demand,
                    cpu_ratio=ctx.settings.cpu_allocation_ratio,
                    ram_ratio=ctx.settings.ram_allocation_ratio,
                ):
                    raise CapacityExhausted(
                        f"host '{host.name}' has no room for flavor '{flavor.name}'"
                        f" (or is not active)",
                        field="host",
                    )
            else:
                host = _first_fit(ctx, s, demand)
            vm = Vm(
                tenant_id=tenant_id,
                name=name,
                flavor_id=flavor.id,
                image=req.image,
                host_id=host.id,
                state=VmState.BUILDING.value,
                vcpus=flavor.vcpus,
                ram_mb=flavor.ram_mb,
                disk_gb=flavor.disk_gb,
                bandwidth_mbps=flavor.bandwidth_mbps,
            )
            s.add(vm)
            made.append((vm, host))
        s.flush()
        _boot_all(ctx.driver, made)
        for vm, _ in made:
            check_transition(VmState.BUILDING, VmState.ACTIVE)
            vm.state = VmState.ACTIVE.value
        m.object_id = str(made[0][0].id) if len(made) == 1 else None
        m.detail = {
            "name": req.name,
            "count": req.count,
            "flavor": flavor.name,
            "vms": [str(vm.id) for vm, _ in made],
        }
        return [vm for vm, _ in made]


def _boot_all(driver: ComputeDriver, made: list[tuple[Vm, Host]]) -> None:
    booted: list[tuple[Vm, Host]] = []
    try:
        for vm, host in made:
            driver.create(_instance(vm, host))
            booted.append((vm, host))
    except FuyunError:
        for vm, host in reversed(booted):
            # Best effort; whatever survives shows up as drift for the agent to repair.
            with suppress(FuyunError):
                driver.delete(host.name, vm.id)
        raise


def _first_fit(ctx: Compute, session: Session, demand: Demand) -> Host:
    """Interim placement: the fullest active hosts that still fit, claimed in the database.

    The network-aware scheduler replaces this; the claim stays the same.
    """
    ratio = ctx.settings.cpu_allocation_ratio
    candidates = session.scalars(
        select(Host)
        .where(
            Host.state == HostState.ACTIVE.value,
            Host.vm_count + 1 <= Host.max_vms,
            Host.used_vcpus + demand.vcpus <= Host.vcpus * ratio,
            Host.used_ram_mb + demand.ram_mb <= Host.ram_mb * ctx.settings.ram_allocation_ratio,
            Host.used_disk_gb + demand.disk_gb <= Host.disk_gb,
            Host.used_bandwidth_mbps + demand.bandwidth_mbps <= Host.nic_mbps,
        )
        .order_by(Host.vm_count.desc(), Host.name)
        .limit(FIRST_FIT_CANDIDATES)
    )
    for host in candidates:
        if claim_host(
            session, host.id, demand, cpu_ratio=ratio, ram_ratio=ctx.settings.ram_allocation_ratio
        ):
            return host
    raise CapacityExhausted("no active host has room for this flavor", field="flavor")


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
            stmt = stmt.where(Vm.name.startswith(name_prefix, autoescape=True))
        if tenant_id is not None:
            stmt = stmt.where(Vm.tenant_id == tenant_id)
        if host:
            if not principal.sees_everything:
                raise Forbidden("only operators may filter by host", field="host")
            stmt = stmt.where(Vm.host_id == resolve_ref(session, Host, host, "host"))
        return paginate(session, stmt, sort=Vm.name, id_column=Vm.id, limit=limit, cursor=cursor)


_POWER = {
    "start": (VmState.ACTIVE, "start"),
    "stop": (VmState.STOPPED, "stop"),
    "reboot": (VmState.ACTIVE, "reboot"),
}


def power(ctx: Compute, principal: Principal, vm_id: uuid.UUID, verb: str) -> Vm:
    """start, stop or reboot a VM."""
    principal.require_write()
    target, op = _POWER[verb]
    with mutation(ctx.db, principal, f"vm.{verb}", "vm", object_id=vm_id) as m:
        vm = _visible_vm(principal, m.session.get(Vm, vm_id, with_for_update=True))
        m.tenant_id = vm.tenant_id
        current = VmState(vm.state)
        if verb == "reboot":
            if current is not VmState.ACTIVE:
                raise InvalidInput(f"only an active VM can reboot (it is {current})", field="state")
        elif current is target:
            return vm
        else:
            check_transition(current, target)
        host = m.session.get(Host, vm.host_id) if vm.host_id else None
        if host is None:
            raise InvalidInput("the VM has no host", field="vm_id")
        getattr(ctx.driver, op)(host.name, vm.id)
        vm.state = target.value
        vm.error = None
        m.detail = {"from": current.value, "to": target.value}
        return vm


def delete_vm(ctx: Compute, principal: Principal, vm_id: uuid.UUID) -> Vm:
    """Return a VM: the instance goes, and its host capacity and quota are given back."""
    principal.require_write()
    with mutation(ctx.db, principal, "vm.delete", "vm", object_id=vm_id) as m:
        s = m.session
        vm = _visible_vm(principal, s.get(Vm, vm_id, with_for_update=True))
        m.tenant_id = vm.tenant_id
        check_transition(VmState(vm.state), VmState.DELETED)
        if vm.host_id is not None:
            host = s.get(Host, vm.host_id)
            if host is not None:
                ctx.driver.delete(host.name, vm.id)
            release_host(s, vm.host_id, _demand(vm))
        quotas.release(
            s,
            vm.tenant_id,
            vms=1,
            vcpus=vm.vcpus,
            ram_mb=vm.ram_mb,
            bandwidth_mbps=vm.bandwidth_mbps,
        )
        m.detail = {"name": vm.name, "host_id": str(vm.host_id) if vm.host_id else None}
        vm.state = VmState.DELETED.value
        vm.host_id = None
        return vm
