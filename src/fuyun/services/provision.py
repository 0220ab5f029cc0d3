"""VM operations as persisted workflows: apply (create), return (delete), power, resize, NICs.

Each is a table of steps with an undo per step (see :mod:`fuyun.workflows.engine`).
Create is ``place`` (quota, scheduler, host claim, VM rows, ports with addresses and
switch tables — one transaction) → ``boot`` (the compute driver, idempotent) →
``activate``. A failure anywhere undoes what was done in reverse; a controller
killed mid-way resumes on restart: the interrupted step runs again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from fuyun.domain.errors import CapacityExhausted, Conflict, NotFound
from fuyun.domain.vm_states import VmState, check_transition
from fuyun.drivers.compute import InstanceSpec, NicSpec
from fuyun.ipam.addresses import to_address, unpack
from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Demand
from fuyun.services import capacity, quotas
from fuyun.services.enforcement import affected_hosts, recompile
from fuyun.services.hostports import publish_host_ports
from fuyun.services.policy import resolve_group
from fuyun.services.portbatch import Binding, open_ports
from fuyun.services.ports import close_port, open_port, port_hosts
from fuyun.services.qos_admission import holds_qos, hosts_holding_qos, settle
from fuyun.store.models import (
    Flavor,
    Host,
    IpAllocation,
    Network,
    Port,
    QosPolicy,
    Segment,
    ServerGroup,
    Vm,
)
from fuyun.workflows.engine import Engine, StepContext, StepDef, WorkflowDef


def _rt(ctx: StepContext) -> Any:
    return ctx.services


def _demand(vm: Vm) -> Demand:
    return Demand(vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps)


def nics_of(s: Session, vm_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[NicSpec, ...]]:
    """Each VM's ports as the hypervisor plugs them: MAC, the segment's VLAN, the network,
    and the addresses IPAM gave each (a guest without DHCP configures itself from them).

    Two queries for any number of VMs, so a batch boots as cheaply as one VM.
    """
    if not vm_ids:
        return {}
    rows = list(
        s.execute(
            select(Port.vm_id, Port.id, Port.mac, Segment.vlan, Network.name)
            .join(Segment, Segment.id == Port.segment_id)
            .join(Network, Network.id == Port.network_id)
            .where(Port.vm_id.in_(vm_ids))
            .order_by(Port.name, Port.id)
        )
    )
    ips: dict[uuid.UUID, list[str]] = defaultdict(list)
    if rows:
        for port_id, address, family in s.execute(
            select(IpAllocation.port_id, IpAllocation.address, IpAllocation.family)
            .where(
                IpAllocation.port_id.in_([r.id for r in rows]),
                IpAllocation.state == "allocated",
            )
            .order_by(IpAllocation.family, IpAllocation.address)
        ):
            ips[port_id].append(str(to_address(unpack(address), family)))
    nics: dict[uuid.UUID, list[NicSpec]] = defaultdict(list)
    for vm_id, port_id, mac, vlan, network in rows:
        nics[vm_id].append(NicSpec(port_id, mac, vlan, network, tuple(ips.get(port_id, ()))))
    return {vm_id: tuple(nics.get(vm_id, ())) for vm_id in vm_ids}


def instance_spec(s: Session, vm: Vm, host: Host) -> InstanceSpec:
    """What the compute driver is asked to run for this VM on this host."""
    return InstanceSpec(
        vm_id=vm.id,
        name=vm.name,
        host=host.name,
        vcpus=vm.vcpus,
        ram_mb=vm.ram_mb,
        disk_gb=vm.disk_gb,
        image=vm.image,
        nics=nics_of(s, [vm.id])[vm.id],
    )


def _vms(s: Session, ctx: StepContext) -> list[Vm]:
    ids = [uuid.UUID(v) for v in ctx.data.get("vms", [])]
    if not ids:
        return []
    rows = {vm.id: vm for vm in s.scalars(select(Vm).where(Vm.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


# -- create --------------------------------------------------------------------------


def _lock_networks(s: Session, ids: list[str]) -> list[Network]:
    """Networks in id order: the lock order every port writer follows."""
    wanted = sorted(uuid.UUID(i) for i in ids)
    rows = {
        n.id: n
        for n in s.scalars(
            select(Network)
            .where(Network.id.in_(wanted))
            .order_by(Network.id)
            .with_for_update(key_share=True)
        )
    }
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise NotFound("a requested network no longer exists", field="networks")
    return [rows[uuid.UUID(i)] for i in ids]


def place(ctx: StepContext) -> None:
    rt, s, p = _rt(ctx), ctx.session, ctx.payload
    tenant_id = uuid.UUID(p["tenant_id"])
    flavor = s.get(Flavor, uuid.UUID(p["flavor_id"]))
    assert flavor is not None
    count = int(p["count"])
    networks = _lock_networks(s, p.get("networks", []))
    policy = s.get(QosPolicy, uuid.UUID(p["qos_policy_id"])) if p.get("qos_policy_id") else None
    quotas.claim(
        s,
        tenant_id,
        vms=count,
        vcpus=flavor.vcpus * count,
        ram_mb=flavor.ram_mb * count,
        bandwidth_mbps=flavor.bandwidth_mbps * count,
    )
    group = s.get(ServerGroup, uuid.UUID(p["group_id"])) if p.get("group_id") else None
    qos_mbps = policy.guarantee_mbps * len(networks) if policy else 0
    demand = Demand(flavor.vcpus, flavor.ram_mb, flavor.disk_gb, flavor.bandwidth_mbps, qos_mbps)
    request = Request(
        demand=demand,
        networks=tuple(rt.placement.network_needs(s, networks)),
        groups=(rt.placement.group_need(s, group),) if group else (),
        pinned=uuid.UUID(p["host_id"]) if p.get("host_id") else None,
        strategy=p.get("strategy", rt.placement.strategy),
    )
    groups = (
        [resolve_group(s, tenant_id, g, "security_groups") for g in p["security_groups"]]
        if p.get("security_groups")
        else None
    )
    placed = rt.placement.place(s, request, count, pinned_name=p.get("host_name"))
    try:
        vm_ids = [uuid.uuid4() for _ in placed]
        _insert_vms(s, p, tenant_id, flavor, group, request.strategy, vm_ids, placed)
        hosts = {
            h.id: h for h in s.scalars(select(Host).where(Host.id.in_({c.host.id for c in placed})))
        }
        joined: set[uuid.UUID] = set()
        pairs_vm = list(zip(vm_ids, placed, strict=True))
        for nic, network in enumerate(networks):
            joined |= open_ports(
                s,
                rt.settings,
                network,
                [Binding(v, f"eth{nic}", hosts[c.host.id]) for v, c in pairs_vm],
                groups=groups,
                qos_policy_id=policy.id if policy is not None else None,
            )
        used = set(hosts) if networks else set()
        shaped = {
            (tenant_id, h)
            for h in (used if policy is not None else hosts_holding_qos(s, tenant_id, used))
        }
        if shaped:
            settle(s, shaped, field="qos_policy")
    except BaseException:
        rt.placement.forget(placed, demand)
        raise
    # Which devices' policy the new members change: found once for the whole request
    # (every port of it joined the same groups), then each device compiled once.
    bound = set(hosts) if networks else set()
    recompile(s, affected_hosts(s, membership_of=joined, hosts=bound) if joined else set())
    # Every host that received a VM has a ports document, even if empty (a VM without
    # NICs): the agent and the console see the host as managed from its first VM on.
    publish_host_ports(s, set(hosts))
    ctx.data["vms"] = [str(v) for v in vm_ids]
    ctx.data["hosts"] = {str(v): c.host.name for v, c in zip(vm_ids, placed, strict=True)}


def _insert_vms(
    s: Session,
    p: dict[str, Any],
    tenant_id: uuid.UUID,
    flavor: Flavor,
    group: ServerGroup | None,
    strategy: str,
    vm_ids: list[uuid.UUID],
    placed: list[Any],
) -> None:
    """The batch's VM rows in one multi-row insert, each with its placement's explanation."""
    count = len(placed)
    s.execute(
        insert(Vm.__table__),
        [
            {
                "id": vm_id,
                "tenant_id": tenant_id,
                "name": p["name"] if count == 1 else f"{p['name']}-{i + 1}",
                "flavor_id": flavor.id,
                "image": p["image"],
                "host_id": choice.host.id,
                "state": VmState.BUILDING.value,
                "vcpus": flavor.vcpus,
                "ram_mb": flavor.ram_mb,
                "disk_gb": flavor.disk_gb,
                "bandwidth_mbps": flavor.bandwidth_mbps,
                "group_id": group.id if group else None,
                "placement": {
                    "considered": choice.decision.considered,
                    "removed": dict(choice.decision.removed),
                    "top": choice.decision.top,
                    "strategy": strategy,
                },
            }
            for i, (vm_id, choice) in enumerate(zip(vm_ids, placed, strict=True))
        ],
    )


def unplace(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    for vm in _vms(s, ctx):
        if vm.state == VmState.DELETED.value:
            continue
        _release(rt, s, vm)
        vm.state, vm.error = VmState.DELETED.value, "rolled back"


def _release(rt: Any, s: Session, vm: Vm) -> None:
    """Give back everything a VM holds: ports, host capacity, quota; recompile policy."""
    affected: set[uuid.UUID] = set()
    ports = list(s.scalars(select(Port).where(Port.vm_id == vm.id).order_by(Port.network_id)))
    qos_mbps = sum(
        s.scalars(
            select(QosPolicy.guarantee_mbps)
            .join(Port, Port.qos_policy_id == QosPolicy.id)
            .where(Port.vm_id == vm.id)
        )
    )
    bound = {port.host_id for port in ports}
    freed: list[tuple[uuid.UUID, int, int, int]] = []
    for port in ports:
        affected |= close_port(s, rt.settings, port, freed=freed)
    recompile(s, affected)
    publish_host_ports(s, bound)
    if vm.host_id is not None:
        capacity.release_host(
            s, vm.host_id, capacity.Demand(vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps)
        )
        rt.placement.released(
            vm.host_id, replace(_demand(vm), qos_mbps=qos_mbps), switch_use=tuple(freed)
        )
    quotas.release(
        s, vm.tenant_id, vms=1, vcpus=vm.vcpus, ram_mb=vm.ram_mb, bandwidth_mbps=vm.bandwidth_mbps
    )


def boot(ctx: StepContext) -> None:
    """Ask the driver for every VM of the batch (idempotent: a replay re-creates nothing).

    Reads columns, not entities: three queries for the whole batch, whatever its size.
    """
    rt, s = _rt(ctx), ctx.session
    ids = [uuid.UUID(v) for v in ctx.data.get("vms", [])]
    if not ids:
        return
    nics = nics_of(s, ids)
    rows = {
        row.id: row
        for row in s.execute(
            select(
                Vm.id, Vm.name, Vm.vcpus, Vm.ram_mb, Vm.disk_gb, Vm.image, Host.name.label("host")
            )
            .join(Host, Host.id == Vm.host_id)
            .where(Vm.id.in_(ids))
        )
    }
    for vm_id in ids:
        r = rows.get(vm_id)
        if r is not None:
            rt.driver.create(
                InstanceSpec(
                    vm_id=r.id,
                    name=r.name,
                    host=r.host,
                    vcpus=r.vcpus,
                    ram_mb=r.ram_mb,
                    disk_gb=r.disk_gb,
                    image=r.image,
                    nics=nics[vm_id],
                )
            )


def unboot(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    for vm in _vms(s, ctx):
        host_name = ctx.data.get("hosts", {}).get(str(vm.id))
        if host_name:
            rt.driver.delete(host_name, vm.id)


def activate(ctx: StepContext) -> None:
    ids = [uuid.UUID(v) for v in ctx.data.get("vms", [])]
    if ids:
        ctx.session.execute(
            update(Vm)
            .where(Vm.id.in_(ids), Vm.state == VmState.BUILDING.value)
            .values(state=VmState.ACTIVE.value)
            .execution_options(synchronize_session=False)
        )


CREATE = WorkflowDef(
    "vm.create",
    (
        StepDef("place", place, unplace),
        StepDef("boot", boot, unboot),
        StepDef("activate", activate),
    ),
)


# -- delete --------------------------------------------------------------------------


def destroy(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    vm = s.get(Vm, uuid.UUID(ctx.payload["vm_id"]))
    if vm is None or vm.state == VmState.DELETED.value:
        return
    check_transition(VmState(vm.state), VmState.DELETED)
    host = s.get(Host, vm.host_id) if vm.host_id else None
    if host is not None:
        rt.driver.delete(host.name, vm.id)


def release(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    vm = s.get(Vm, uuid.UUID(ctx.payload["vm_id"]), with_for_update=True)
    if vm is None or vm.state == VmState.DELETED.value:
        return
    _release(rt, s, vm)
    ctx.data["host_id"] = str(vm.host_id) if vm.host_id else None
    vm.state, vm.host_id = VmState.DELETED.value, None


DELETE = WorkflowDef("vm.delete", (StepDef("destroy", destroy), StepDef("release", release)))


# -- power ---------------------------------------------------------------------------

_TARGET = {"start": VmState.ACTIVE, "stop": VmState.STOPPED, "reboot": VmState.ACTIVE}


def power(ctx: StepContext) -> None:
    rt, s, verb = _rt(ctx), ctx.session, ctx.payload["verb"]
    vm = s.get(Vm, uuid.UUID(ctx.payload["vm_id"]), with_for_update=True)
    assert vm is not None
    target, current = _TARGET[verb], VmState(vm.state)
    if verb == "reboot" and current is not VmState.ACTIVE:
        raise Conflict(
            f"only an active VM can reboot (it is {current})", field="state", code="invalid_state"
        )
    if verb != "reboot" and current is target:
        return
    if verb != "reboot":
        check_transition(current, target)
    host = s.get(Host, vm.host_id) if vm.host_id else None
    if host is None:
        raise Conflict("the VM has no host", field="vm_id")
    getattr(rt.driver, verb)(host.name, vm.id)
    vm.state, vm.error = target.value, None


POWER = WorkflowDef("vm.power", (StepDef("power", power),))


# -- resize --------------------------------------------------------------------------


def claim_resize(ctx: StepContext) -> None:
    rt, s, p = _rt(ctx), ctx.session, ctx.payload
    vm = s.get(Vm, uuid.UUID(p["vm_id"]), with_for_update=True)
    flavor = s.get(Flavor, uuid.UUID(p["flavor_id"]))
    assert vm is not None and flavor is not None and vm.host_id is not None
    old = _demand(vm)
    new = Demand(flavor.vcpus, flavor.ram_mb, flavor.disk_gb, flavor.bandwidth_mbps)
    delta = capacity.Demand(
        new.vcpus - old.vcpus,
        new.ram_mb - old.ram_mb,
        new.disk_gb - old.disk_gb,
        new.bandwidth_mbps - old.bandwidth_mbps,
        vms=0,
    )
    quotas.claim(
        s, vm.tenant_id, vcpus=delta.vcpus, ram_mb=delta.ram_mb, bandwidth_mbps=delta.bandwidth_mbps
    )
    host = s.get(Host, vm.host_id)
    assert host is not None
    if not capacity.claim_host(
        s,
        vm.host_id,
        delta,
        cpu_ratio=rt.settings.cpu_allocation_ratio,
        ram_ratio=rt.settings.ram_allocation_ratio,
    ):
        raise CapacityExhausted(
            f"flavor '{flavor.name}' does not fit on host {host.name} beside its other VMs;"
            " migrate the VM first",
            field="flavor",
            code="does_not_fit",
        )
    ctx.data["old"] = [old.vcpus, old.ram_mb, old.disk_gb, old.bandwidth_mbps, str(vm.flavor_id)]
    vm.flavor_id = flavor.id
    vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps = (
        new.vcpus,
        new.ram_mb,
        new.disk_gb,
        new.bandwidth_mbps,
    )
    with rt.placement._lock:
        sched = rt.placement._scheduler
        if sched is not None and host.id in sched.cluster.hosts:
            sched.cluster.claim(
                host.id,
                Demand(delta.vcpus, delta.ram_mb, delta.disk_gb, delta.bandwidth_mbps),
                vms=0,
            )


def unclaim_resize(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    old = ctx.data.get("old")
    vm = s.get(Vm, uuid.UUID(ctx.payload["vm_id"]), with_for_update=True)
    if old is None or vm is None or vm.host_id is None:
        return
    delta = capacity.Demand(
        old[0] - vm.vcpus,
        old[1] - vm.ram_mb,
        old[2] - vm.disk_gb,
        old[3] - vm.bandwidth_mbps,
        vms=0,
    )
    capacity.release_host(s, vm.host_id, -delta)
    quotas.claim(
        s, vm.tenant_id, vcpus=delta.vcpus, ram_mb=delta.ram_mb, bandwidth_mbps=delta.bandwidth_mbps
    )
    vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps = old[0], old[1], old[2], old[3]
    vm.flavor_id = uuid.UUID(old[4])
    rt.placement.invalidate()


def apply_resize(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    vm = s.get(Vm, uuid.UUID(ctx.payload["vm_id"]))
    assert vm is not None and vm.host_id is not None
    host = s.get(Host, vm.host_id)
    assert host is not None
    rt.driver.resize(host.name, vm.id, vm.vcpus, vm.ram_mb)


RESIZE = WorkflowDef(
    "vm.resize", (StepDef("claim", claim_resize, unclaim_resize), StepDef("apply", apply_resize))
)


# -- NICs ----------------------------------------------------------------------------


def attach(ctx: StepContext) -> None:
    rt, s, p = _rt(ctx), ctx.session, ctx.payload
    [network] = _lock_networks(s, [p["network_id"]])
    vm = s.get(Vm, uuid.UUID(p["vm_id"]))
    assert vm is not None
    host = s.get(Host, vm.host_id) if vm.host_id else None
    nics = len(list(s.scalars(select(Port.id).where(Port.vm_id == vm.id))))
    view = open_port(
        s, rt.settings, network, name=f"eth{nics}", host=host, vm_id=vm.id, ip=p.get("ip")
    )
    if host is not None and holds_qos(s, vm.tenant_id, host.id):
        settle(s, {(vm.tenant_id, host.id)}, field="network")
    recompile(s, port_hosts(s, view.id))
    publish_host_ports(s, [view.host_id])
    ctx.data["port_id"] = str(view.id)


def detach_new(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    port_id = ctx.data.get("port_id")
    port = s.get(Port, uuid.UUID(port_id)) if port_id else None
    if port is not None:
        host_id = port.host_id
        recompile(s, close_port(s, rt.settings, port))
        publish_host_ports(s, [host_id])


def detach(ctx: StepContext) -> None:
    rt, s = _rt(ctx), ctx.session
    port = s.get(Port, uuid.UUID(ctx.payload["port_id"]))
    if port is not None:
        host_id = port.host_id
        recompile(s, close_port(s, rt.settings, port))
        publish_host_ports(s, [host_id])


ATTACH = WorkflowDef("vm.attach", (StepDef("port", attach, detach_new),))
DETACH = WorkflowDef("vm.detach", (StepDef("port", detach),))


def register_all(engine: Engine) -> None:
    for definition in (CREATE, DELETE, POWER, RESIZE, ATTACH, DETACH):
        engine.register(definition)
