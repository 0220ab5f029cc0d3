"""Live migration as one persisted workflow: the network arrives before the VM does.

Steps, each recorded before it runs and undone in reverse on failure:

``reserve``  claim the VM's size on the target host; the VM shows ``migrating``.
``extend``   bind each port to the target as well (its peer binding): the VLAN's
             span grows to the target ToR (switch tables claimed, over an L2
             extension if need be) and security policy is recompiled for the
             target's devices — desired state written at the destination.
``converge`` apply those devices — and the target host's port map (port plugged,
             VLAN-tagged, anti-spoofed) and QoS — through the network driver (the
             reconcile path) and wait until each reports the generation written;
             a device that does not converge fails the move before the VM is touched.
``migrate``  the compute driver's live migration (undone by migrating back).
``cutover``  the port's primary binding and the VM's host become the target (flow
             and telemetry mappings follow the binding); the hypervisor announces
             the MAC from the destination (RARP/gratuitous ARP).
``verify``   the target's devices must enforce exactly the intended policy for the
             VM's ports, applied; a violation fails the move and rolls it back.
``cleanup``  the source binding goes: its rules are recompiled away and the span
             shrinks if this was the ToR's last port of the VLAN.
``release``  the source host's capacity is given back; the VM is what it was.

A controller killed at any step boundary resumes on restart: database steps are
exactly-once (done in the transaction that marks them done), and the driver step
is idempotent (a replay of a finished migration returns at once).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.domain.errors import CapacityExhausted, Conflict, DriverError
from fuyun.domain.vm_states import VmState, check_transition
from fuyun.scheduler.model import Demand
from fuyun.services import capacity, l2fabric
from fuyun.services.enforcement import recompile
from fuyun.services.migration.checks import destination_devices, verify_ports
from fuyun.services.migration.plan import assess
from fuyun.services.ports import bind_port_host
from fuyun.services.reconcile import converge
from fuyun.store.models import DeviceState, Host, IpAllocation, Module, Network, Port, Segment, Vm
from fuyun.workflows.engine import Engine, StepContext, StepDef, WorkflowDef

KIND = "vm.migrate"
CONVERGE_POLL_S = 0.05


def _vm(ctx: StepContext, *, lock: bool = False) -> Vm:
    vm = ctx.session.get(Vm, uuid.UUID(ctx.payload["vm_id"]), with_for_update=lock)
    assert vm is not None
    return vm


def _host(s: Session, key: str, ctx: StepContext) -> Host:
    value = ctx.payload.get(key) or ctx.data.get(key)
    host = s.get(Host, uuid.UUID(value))
    assert host is not None
    return host


def _demand(vm: Vm) -> capacity.Demand:
    return capacity.Demand(vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps)


def _ports(s: Session, vm_id: uuid.UUID) -> list[Port]:
    return list(s.scalars(select(Port).where(Port.vm_id == vm_id).order_by(Port.name)))


def _l2(s: Session, port: Port) -> tuple[Segment, Module, int]:
    segment = s.get(Segment, port.segment_id)
    network = s.get(Network, port.network_id)
    assert segment is not None and network is not None
    module = s.get(Module, network.module_id)
    assert module is not None
    ips = len(list(s.scalars(select(IpAllocation.id).where(IpAllocation.port_id == port.id))))
    return segment, module, ips


# -- reserve ---------------------------------------------------------------------------


def reserve(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    vm = _vm(ctx, lock=True)
    target = _host(s, "target_host_id", ctx)
    if vm.host_id is None:
        raise Conflict("the VM runs on no host", field="vm_id", code="invalid_state")
    check_transition(VmState(vm.state), VmState.MIGRATING)
    if vm.host_id == target.id:
        raise Conflict(f"the VM already runs on {target.name}", field="to", code="same_host")
    demand = _demand(vm)
    if not capacity.claim_host(
        s,
        target.id,
        demand,
        cpu_ratio=rt.settings.cpu_allocation_ratio,
        ram_ratio=rt.settings.ram_allocation_ratio,
    ):
        raise CapacityExhausted(
            f"host {target.name} no longer has room for the VM", field="to", code="does_not_fit"
        )
    ctx.data.update(
        source_host_id=str(vm.host_id),
        prior_state=vm.state,
        reserved=True,
        demand=[demand.vcpus, demand.ram_mb, demand.disk_gb, demand.bandwidth_mbps],
    )
    vm.state = VmState.MIGRATING.value
    _claim_in_memory(rt, target.id, demand)


def unreserve(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    if not ctx.data.get("reserved"):
        return
    vm = _vm(ctx, lock=True)
    d = ctx.data["demand"]
    demand = capacity.Demand(d[0], d[1], d[2], d[3])
    target = _host(s, "target_host_id", ctx)
    capacity.release_host(s, target.id, demand)
    rt.placement.released(target.id, Demand(d[0], d[1], d[2], d[3]))
    vm.state = ctx.data["prior_state"]
    vm.host_id = uuid.UUID(ctx.data["source_host_id"])


def _claim_in_memory(rt: Any, host_id: uuid.UUID, d: capacity.Demand) -> None:
    with rt.placement._lock:
        sched = rt.placement._scheduler
        if sched is not None and host_id in sched.cluster.hosts:
            sched.cluster.claim(host_id, Demand(d.vcpus, d.ram_mb, d.disk_gb, d.bandwidth_mbps))


# -- extend and converge -----------------------------------------------------------------


def extend(ctx: StepContext) -> None:
    """Re-check the plan against the store as it is now, then build the destination."""
    rt, s = ctx.services, ctx.session
    vm = _vm(ctx)
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    # The plan was made earlier; the fabric may have moved. Judge the network again.
    plan = assess(rt, s, vm, target, in_flight=True)
    if plan.reasons:
        raise Conflict(
            "the move is no longer possible: " + "; ".join(plan.reasons),
            field="to",
            code="infeasible",
        )
    # Only the two hosts' devices change: the port keeps its addresses and groups and
    # stays bound throughout, so no other host's address sets or rules move.
    affected: set[uuid.UUID] = {source.id, target.id}
    extended = []
    use: list[tuple[uuid.UUID, int, int, int]] = []
    for port in _ports(s, vm.id):
        segment, module, ips = _l2(s, port)
        cross = target.module_id != module.id
        l2fabric.bind(
            s, segment, module, target, ips, extended=cross, settings=rt.settings, use=use
        )
        bind_port_host(s, port, source.id, target.id)
        extended.append(str(port.id))
    recompile(s, affected)
    rt.placement.tables_changed(use)
    ctx.data["extended"] = extended
    ctx.data["await"] = {
        str(row.id): row.desired_generation for row in destination_devices(s, target, vm.id)
    }


def unextend(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    if not ctx.data.get("extended"):
        return
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    affected: set[uuid.UUID] = {source.id, target.id}
    freed: list[tuple[uuid.UUID, int, int, int]] = []
    for port_id in ctx.data["extended"]:
        port = s.get(Port, uuid.UUID(port_id))
        if port is None:
            continue
        segment, module, ips = _l2(s, port)
        bind_port_host(s, port, source.id, None)
        l2fabric.unbind(s, segment, module, target, ips, freed=freed)
    recompile(s, affected)
    rt.placement.tables_changed(freed)


def converge_target(ctx: StepContext) -> None:
    """Apply the destination's devices through the driver; wait for their generations."""
    rt, s = ctx.services, ctx.session
    wanted = {uuid.UUID(k): v for k, v in ctx.data.get("await", {}).items()}
    deadline = time.monotonic() + rt.settings.migration_converge_timeout_s
    while True:
        refused = 0
        if rt.network is not None:
            refused = converge(s, rt.network, list(wanted)).failed
        rows = {
            r.id: r for r in s.scalars(select(DeviceState).where(DeviceState.id.in_(list(wanted))))
        }
        behind = [
            f"{rows[i].device_type} {rows[i].device_name} (applied {rows[i].applied_generation}"
            f" of {g})"
            for i, g in wanted.items()
            if i in rows and rows[i].applied_generation < g
        ]
        if not behind:
            ctx.data["converged"] = len(wanted)
            return
        # A device that refused its configuration will not take it by waiting (and this
        # step holds a write transaction): fail now, before the VM is touched.
        if refused or time.monotonic() >= deadline:
            raise DriverError(
                "destination devices did not converge: " + ", ".join(behind), field="to"
            )
        time.sleep(CONVERGE_POLL_S)
        s.expire_all()


# -- the move itself ---------------------------------------------------------------------


def migrate(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    vm = _vm(ctx)
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    stats = rt.driver.migrate(
        vm.id,
        source.name,
        target.name,
        max_downtime_ms=int(ctx.payload.get("max_downtime_ms", 300)),
    )
    ctx.data["stats"] = {
        "total_ms": stats.total_ms,
        "downtime_ms": stats.downtime_ms,
        "transferred_bytes": stats.transferred_bytes,
    }


def migrate_back(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    vm = _vm(ctx)
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    if rt.driver.status(target.name, vm.id) is not None:
        rt.driver.migrate(vm.id, target.name, source.name)


def cutover(ctx: StepContext) -> None:
    s = ctx.session
    vm = _vm(ctx, lock=True)
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    affected: set[uuid.UUID] = {source.id, target.id}
    for port in _ports(s, vm.id):
        bind_port_host(s, port, target.id, source.id)
    vm.host_id = target.id
    recompile(s, affected)
    # QEMU announces the guest's MACs from the destination (self-announce, RARP) as
    # the guest resumes there; the fabric learns the new ToR port from that frame.
    ctx.data["cut_over"] = True
    ctx.data["announced_from"] = target.name


def uncutover(ctx: StepContext) -> None:
    s = ctx.session
    if not ctx.data.get("cut_over"):
        return
    vm = _vm(ctx, lock=True)
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    affected: set[uuid.UUID] = {source.id, target.id}
    for port in _ports(s, vm.id):
        bind_port_host(s, port, source.id, target.id)
    vm.host_id = source.id
    recompile(s, affected)


def verify(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    vm = _vm(ctx)
    target = _host(s, "target_host_id", ctx)
    # Cut-over (or a concurrent move to the same host) may have moved the target's
    # devices on: apply what is desired now, then judge what they run.
    if rt.network is not None:
        converge(s, rt.network, [d.id for d in destination_devices(s, target, vm.id)])
    problems = verify_ports(s, target, vm.id)
    if problems:
        raise Conflict(
            "verify after the move: " + "; ".join(problems[:5]), field="to", code="verify_failed"
        )
    ctx.data["verified"] = True


def cleanup(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    vm = _vm(ctx)
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    affected: set[uuid.UUID] = {source.id, target.id}
    freed: list[tuple[uuid.UUID, int, int, int]] = []
    for port in _ports(s, vm.id):
        segment, module, ips = _l2(s, port)
        bind_port_host(s, port, target.id, None)
        l2fabric.unbind(s, segment, module, source, ips, freed=freed)
    recompile(s, affected)
    rt.placement.tables_changed(freed)
    ctx.data["cleaned"] = True


def uncleanup(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    if not ctx.data.get("cleaned"):
        return
    vm = _vm(ctx)
    source, target = _host(s, "source_host_id", ctx), _host(s, "target_host_id", ctx)
    affected: set[uuid.UUID] = {source.id, target.id}
    use: list[tuple[uuid.UUID, int, int, int]] = []
    for port in _ports(s, vm.id):
        segment, module, ips = _l2(s, port)
        cross = source.module_id != module.id
        l2fabric.bind(
            s, segment, module, source, ips, extended=cross, settings=rt.settings, use=use
        )
        bind_port_host(s, port, target.id, source.id)
    recompile(s, affected)
    rt.placement.tables_changed(use)


def release(ctx: StepContext) -> None:
    rt, s = ctx.services, ctx.session
    vm = _vm(ctx, lock=True)
    source = _host(s, "source_host_id", ctx)
    d = ctx.data["demand"]
    capacity.release_host(s, source.id, capacity.Demand(d[0], d[1], d[2], d[3]))
    rt.placement.released(source.id, Demand(d[0], d[1], d[2], d[3]))
    vm.state, vm.error = ctx.data["prior_state"], None


MIGRATE = WorkflowDef(
    KIND,
    (
        StepDef("reserve", reserve, unreserve),
        StepDef("extend", extend, unextend),
        StepDef("converge", converge_target),
        StepDef("migrate", migrate, migrate_back),
        StepDef("cutover", cutover, uncutover),
        StepDef("verify", verify),
        StepDef("cleanup", cleanup, uncleanup),
        StepDef("release", release),
    ),
)
STEPS = tuple(step.name for step in MIGRATE.steps)


def register(engine: Engine) -> None:
    engine.register(MIGRATE)
