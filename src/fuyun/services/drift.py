"""Drift: where what the hypervisor runs differs from what the store says, and the cure.

:func:`scan` compares, per host, the store's VMs with the compute driver's
``list_instances`` — on level, like every reconciler here — and reports each
difference with the actions that resolve it. An operator then chooses:

==================  =======================================  ==========================
kind                repair (make the hypervisor obey)        adopt (make the store agree)
==================  =======================================  ==========================
died                start the instance again                 record the VM as stopped
unexpected-running  stop the instance                        record the VM as active
missing             create it again from the store           —
unknown             delete the stray instance                record it as a VM of a
                                                             tenant, with a flavor
==================  =======================================  ==========================

VMs in transition (building, migrating) are not judged: a workflow owns them.
Each action is audited; a store change is one transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.domain.errors import CapacityExhausted, Conflict, InvalidInput, NotFound
from fuyun.domain.vm_states import VmState
from fuyun.drivers.compute import InstanceStatus
from fuyun.drivers.compute.base import PowerState
from fuyun.services import capacity, quotas
from fuyun.services.audit import mutation
from fuyun.services.principal import Principal
from fuyun.services.provision import instance_spec
from fuyun.services.runtime import Runtime
from fuyun.store.models import Flavor, Host, Tenant, Vm

_JUDGED = (VmState.ACTIVE.value, VmState.STOPPED.value)


class DriftKind(StrEnum):
    DIED = "died"
    UNEXPECTED_RUNNING = "unexpected-running"
    MISSING = "missing"
    UNKNOWN = "unknown"


ACTIONS: dict[DriftKind, tuple[str, ...]] = {
    DriftKind.DIED: ("repair", "adopt"),
    DriftKind.UNEXPECTED_RUNNING: ("repair", "adopt"),
    DriftKind.MISSING: ("repair",),
    DriftKind.UNKNOWN: ("repair", "adopt"),
}


@dataclass(frozen=True)
class Drift:
    host: str
    vm_id: uuid.UUID
    kind: DriftKind
    store_state: str | None  # None: the store has no such VM on this host
    observed: str | None  # the hypervisor's power state; None: it runs nothing of that id
    vm_name: str | None = None
    vcpus: int | None = None
    ram_mb: int | None = None

    @property
    def actions(self) -> tuple[str, ...]:
        return ACTIONS[self.kind]


def compare(host: str, store: list[Vm], observed: list[InstanceStatus]) -> list[Drift]:
    """The differences on one host; pure, so every rule is tested without a hypervisor."""
    seen = {i.vm_id: i for i in observed}
    known = {vm.id for vm in store}
    out = []
    for vm in store:
        if vm.state not in _JUDGED:
            continue
        inst = seen.get(vm.id)
        if inst is None:
            kind: DriftKind | None = DriftKind.MISSING
        elif vm.state == VmState.ACTIVE.value and inst.power is PowerState.STOPPED:
            kind = DriftKind.DIED
        elif vm.state == VmState.STOPPED.value and inst.power is PowerState.RUNNING:
            kind = DriftKind.UNEXPECTED_RUNNING
        else:
            kind = None
        if kind is not None:
            out.append(
                Drift(host, vm.id, kind, vm.state, inst.power.value if inst else None, vm.name)
            )
    for inst in observed:
        if inst.vm_id not in known:
            out.append(
                Drift(
                    host, inst.vm_id, DriftKind.UNKNOWN, None, inst.power.value,
                    vcpus=inst.vcpus, ram_mb=inst.ram_mb,
                )
            )  # fmt: skip
    return out


def _store_vms(s: Session, host_id: uuid.UUID) -> list[Vm]:
    return list(
        s.scalars(select(Vm).where(Vm.host_id == host_id, Vm.state != VmState.DELETED.value))
    )


def _host(s: Session, name: str) -> Host:
    host = s.scalar(select(Host).where(Host.name == name))
    if host is None:
        raise NotFound(f"no host '{name}'", field="host")
    return host


def scan(rt: Runtime, principal: Principal, *, host: str | None = None) -> list[Drift]:
    """Drift on ``host``, or on every host the store has VMs on.

    A sweep without ``host`` cannot see strays on hosts the store thinks empty:
    that is each host agent's own scan (``host=`` its name).
    """
    principal.require_operator()
    with rt.db.read_session() as s:
        if host is not None:
            hosts = [_host(s, host)]
        else:
            ids = select(Vm.host_id).where(Vm.state != VmState.DELETED.value).distinct()
            hosts = list(s.scalars(select(Host).where(Host.id.in_(ids)).order_by(Host.name)))
        plan = [(h.name, _store_vms(s, h.id)) for h in hosts]
    found: list[Drift] = []
    for name, vms in plan:
        found += compare(name, vms, rt.driver.list_instances(name))
    return found


def _current(rt: Runtime, host: str, vm_id: uuid.UUID) -> Drift:
    """The drift as it is now: an action acts on the present, not on an old report."""
    with rt.db.read_session() as s:
        vms = _store_vms(s, _host(s, host).id)
    status = rt.driver.status(host, vm_id)
    for d in compare(host, vms, [status] if status else []):
        if d.vm_id == vm_id:
            return d
    raise Conflict(f"no drift for {vm_id} on {host} (any more)", field="vm_id", code="no_drift")


def repair(rt: Runtime, principal: Principal, host: str, vm_id: uuid.UUID) -> Drift:
    """Make the hypervisor match the store."""
    principal.require_operator()
    with mutation(rt.db, principal, "drift.repair", "vm", object_id=vm_id) as m:
        d = _current(rt, host, vm_id)
        m.detail = {"host": host, "kind": d.kind.value}
        if d.kind is DriftKind.DIED:
            rt.driver.start(host, vm_id)
        elif d.kind is DriftKind.UNEXPECTED_RUNNING:
            rt.driver.stop(host, vm_id)
        elif d.kind is DriftKind.UNKNOWN:
            rt.driver.delete(host, vm_id)
        else:  # missing
            vm = m.session.get(Vm, vm_id)
            assert vm is not None
            m.tenant_id = vm.tenant_id
            rt.driver.create(instance_spec(m.session, vm, _host(m.session, host)))
            if vm.state == VmState.STOPPED.value:
                rt.driver.stop(host, vm_id)
        return d


def adopt(
    rt: Runtime,
    principal: Principal,
    host: str,
    vm_id: uuid.UUID,
    *,
    tenant: str | None = None,
    flavor: str | None = None,
) -> Drift:
    """Make the store match the hypervisor; an unknown instance needs a tenant and flavor."""
    principal.require_operator()
    with mutation(rt.db, principal, "drift.adopt", "vm", object_id=vm_id) as m:
        s = m.session
        d = _current(rt, host, vm_id)
        m.detail = {"host": host, "kind": d.kind.value}
        if "adopt" not in d.actions:
            raise Conflict(
                f"a {d.kind.value} VM cannot be adopted; repair it or delete the VM",
                field="action",
                code="invalid_action",
            )
        if d.kind is DriftKind.UNKNOWN:
            m.tenant_id = _adopt_unknown(rt, s, d, tenant, flavor)
            return d
        if tenant or flavor:
            raise InvalidInput(
                f"only an unknown instance is adopted into a tenant; this one is {d.kind.value}",
                field="tenant" if tenant else "flavor",
            )
        vm = s.get(Vm, vm_id, with_for_update=True)
        assert vm is not None
        m.tenant_id = vm.tenant_id
        vm.state = (VmState.STOPPED if d.kind is DriftKind.DIED else VmState.ACTIVE).value
        return d


def _adopt_unknown(
    rt: Runtime, s: Session, d: Drift, tenant: str | None, flavor: str | None
) -> uuid.UUID:
    if not tenant:
        raise InvalidInput("adopting an unknown instance needs its tenant", field="tenant")
    if not flavor:
        raise InvalidInput("adopting an unknown instance needs a flavor", field="flavor")
    if s.get(Vm, d.vm_id) is not None:
        raise Conflict(
            f"VM {d.vm_id} is recorded on another host; migrate or delete it first",
            field="vm_id",
        )
    t = s.scalar(select(Tenant).where(Tenant.name == tenant))
    if t is None:
        raise NotFound(f"no tenant '{tenant}'", field="tenant")
    f = s.scalar(select(Flavor).where(Flavor.name == flavor))
    if f is None:
        raise NotFound(f"no flavor '{flavor}'", field="flavor")
    if (f.vcpus, f.ram_mb) != (d.vcpus, d.ram_mb):
        raise InvalidInput(
            f"flavor '{flavor}' has {f.vcpus} vCPU / {f.ram_mb} MiB; the instance runs with "
            f"{d.vcpus} vCPU / {d.ram_mb} MiB",
            field="flavor",
        )
    host = _host(s, d.host)
    quotas.claim(s, t.id, vms=1, vcpus=f.vcpus, ram_mb=f.ram_mb, bandwidth_mbps=f.bandwidth_mbps)
    demand = capacity.Demand(f.vcpus, f.ram_mb, f.disk_gb, f.bandwidth_mbps)
    if not capacity.claim_host(
        s,
        host.id,
        demand,
        cpu_ratio=rt.settings.cpu_allocation_ratio,
        ram_ratio=rt.settings.ram_allocation_ratio,
    ):
        raise CapacityExhausted(f"host {host.name} has no room to record it", field="host")
    running = d.observed == PowerState.RUNNING.value
    s.add(
        Vm(
            id=d.vm_id,
            tenant_id=t.id,
            name=f"adopted-{d.vm_id.hex[:8]}",
            flavor_id=f.id,
            image="adopted",
            host_id=host.id,
            state=(VmState.ACTIVE if running else VmState.STOPPED).value,
            vcpus=f.vcpus,
            ram_mb=f.ram_mb,
            disk_gb=f.disk_gb,
            bandwidth_mbps=f.bandwidth_mbps,
            placement={"adopted": True},
        )
    )
    rt.placement.invalidate()
    return t.id
