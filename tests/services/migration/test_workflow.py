"""The vm.migrate workflow: what moves, what stays, and clean rollback from every step."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from fuyun.domain.errors import DriverError, FuyunError
from fuyun.domain.qos import HostQos
from fuyun.services import qos as qos_service
from fuyun.services.migration import service
from fuyun.services.migration.plan import Target
from fuyun.services.migration.workflow import STEPS
from fuyun.services.principal import SYSTEM
from fuyun.store.engine import Database
from fuyun.store.models import (
    DeviceState,
    Host,
    IpAllocation,
    Port,
    PortSecurityGroup,
    QosPolicy,
    SpanMember,
    Switch,
    Vm,
    Workflow,
    WorkflowStep,
)
from tests.services.migration.conftest import World
from tests.support.snapshot import assert_snapshot_matches_store

SOURCE, TARGET = "sz1-m01-t01-h01", "sz1-m01-t03-h01"


def port_shaping(s: Any, port: Port) -> tuple[int, int] | None:
    """(guarantee, ceiling) in bit/s the port's current host is asked to shape it with."""
    host = s.get(Host, port.host_id) if port.host_id else None
    rendered = s.scalar(
        select(DeviceState.rendered).where(
            DeviceState.device_type == "host",
            DeviceState.device_name == (host.name if host else ""),
            DeviceState.enforcement_point == "qos",
        )
    )
    if not rendered:
        return None
    shaped = [q for q in HostQos.from_json(rendered).ports if q.port_id == str(port.id)]
    return (shaped[0].min_bps, shaped[0].max_bps) if shaped else None


def identity(db: Database, vm_id: uuid.UUID) -> dict[str, Any]:
    """What a partner sees of a VM's network: must not change across a move — addresses,
    MAC, security groups, and QoS (its policy, and the shaping its host is asked for)."""
    with db.read_session() as s:
        out = {}
        for port in s.scalars(select(Port).where(Port.vm_id == vm_id)):
            ips = sorted(
                (a.address, a.family)
                for a in s.scalars(select(IpAllocation).where(IpAllocation.port_id == port.id))
            )
            groups = sorted(
                str(g)
                for g in s.scalars(
                    select(PortSecurityGroup.group_id).where(PortSecurityGroup.port_id == port.id)
                )
            )
            policy = s.get(QosPolicy, port.qos_policy_id) if port.qos_policy_id else None
            qos = (
                (policy.name, policy.guarantee_mbps, policy.ceiling_mbps, policy.burst_bytes)
                if policy
                else None
            )
            out[str(port.id)] = (
                port.mac,
                ips,
                groups,
                port.segment_id,
                port.name,
                qos,
                port_shaping(s, port),
            )
        return out


def books(db: Database) -> dict[str, Any]:
    """Everything a move touches in the store, to compare before and after a rollback."""
    with db.read_session() as s:
        return {
            "vms": {str(v.id): (v.host_id, v.state) for v in s.scalars(select(Vm))},
            "ports": {str(p.id): (p.host_id, p.peer_host_id) for p in s.scalars(select(Port))},
            "hosts": {
                h.name: (h.vm_count, h.used_vcpus, h.used_ram_mb, h.used_bandwidth_mbps)
                for h in s.scalars(select(Host))
            },
            "switches": {
                sw.name: (sw.used_mac, sw.used_arp, sw.used_vlans)
                for sw in s.scalars(select(Switch))
            },
            "span": sorted(
                (str(m.segment_id), str(m.switch_id), m.ports)
                for m in s.scalars(select(SpanMember))
            ),
        }


def digests(db: Database) -> dict[tuple[str, str, str], str]:
    with db.read_session() as s:
        return {
            (d.device_type, d.device_name, d.enforcement_point): d.digest
            for d in s.scalars(select(DeviceState))
        }


def assert_rolled_back(w: World, vm: Vm, before: dict[str, Any], dig: dict[Any, str]) -> None:
    assert books(w.db) == before
    after = digests(w.db)
    assert {k: after[k] for k in dig} == dig, "devices enforce what they did before"
    assert w.rt.driver.status(SOURCE, vm.id) is not None, "the VM still runs on the source"
    assert w.rt.driver.status(TARGET, vm.id) is None


def test_move_keeps_ip_mac_groups_and_moves_policy(world: World) -> None:
    qos_service.create_policy(
        world.db,
        SYSTEM,
        qos_service.PolicySpec("gold", guarantee_mbps=100, ceiling_mbps=400),
        tenant_id=world.tenant_id,
    )
    vm = world.vm("a", SOURCE, qos_policy="gold")
    peer = world.vm("b", "sz1-m01-t01-h02")
    before = identity(world.db, vm.id)
    assert next(iter(before.values()))[-1] == (100_000_000, 400_000_000), "shaped on the source"
    result = service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert result.state == "succeeded" and result.plan.scope == "same-module"
    assert identity(world.db, vm.id) == before
    assert world.host_of(vm.id) == TARGET
    assert world.rt.driver.status(TARGET, vm.id) is not None
    assert world.rt.driver.status(SOURCE, vm.id) is None
    with world.db.read_session() as s:
        port = s.scalar(select(Port).where(Port.vm_id == vm.id))
        assert port is not None and port.peer_host_id is None
        assert s.get(Vm, vm.id).state == "active"  # type: ignore[union-attr]
        policy = DeviceState.enforcement_point == "vswitch"
        target_dev = s.scalar(select(DeviceState).where(DeviceState.device_name == TARGET, policy))
        source_dev = s.scalar(select(DeviceState).where(DeviceState.device_name == SOURCE, policy))
        maps = {
            d.device_name: d.rendered
            for d in s.scalars(select(DeviceState).where(DeviceState.enforcement_point == "ports"))
        }
        assert str(port.id) in maps[TARGET] and str(port.id) not in maps.get(SOURCE, "")
        assert target_dev is not None and source_dev is not None
        assert str(port.id) in str(target_dev.ir)
        assert str(port.id) not in str(source_dev.ir), "source rules cleaned"
        assert target_dev.applied_generation == target_dev.desired_generation
        hosts = {h.name: h for h in s.scalars(select(Host).where(Host.vm_count > 0))}
        assert hosts[TARGET].vm_count == 1 and SOURCE not in hosts
        assert hosts["sz1-m01-t01-h02"].vm_count == 1  # b stays
        # The peer's ToR keeps the VLAN (b is still there); the target's ToR carries it now.
        tors = {
            sw
            for (sw,) in s.execute(
                select(Switch.name).join(SpanMember, SpanMember.switch_id == Switch.id)
            )
        }
        assert tors == {"sz1-m01-t01", "sz1-m01-t03"}
    assert peer.id != vm.id
    steps = service.list_migrations(world.rt, SYSTEM, vm_id=vm.id)[0]
    assert [n for n, _ in steps.steps] == list(STEPS)
    assert steps.progress == 1.0


def test_last_port_leaving_shrinks_the_span(world: World) -> None:
    vm = world.vm("a", SOURCE)
    service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    # The scheduler's snapshot follows the tables, or it would refuse the source's ToR
    # and overfill the destination's until a restart.
    assert_snapshot_matches_store(world.rt)
    with world.db.read_session() as s:
        t01 = s.scalar(select(Switch).where(Switch.name == "sz1-m01-t01"))
        t03 = s.scalar(select(Switch).where(Switch.name == "sz1-m01-t03"))
        assert t01 is not None and t03 is not None
        assert (t01.used_vlans, t01.used_mac) == (0, 0)
        assert (t03.used_vlans, t03.used_mac) == (1, 1)


@pytest.mark.parametrize("step", STEPS)
def test_failure_at_each_step_rolls_back_everything(world: World, step: str) -> None:
    vm = world.vm("a", SOURCE)
    world.vm("b", "sz1-m01-t01-h02")
    before, dig = books(world.db), digests(world.db)
    ident = identity(world.db, vm.id)

    def fail(_wf: uuid.UUID, name: str) -> None:
        if name == step:
            raise DriverError(f"injected failure at {name}")

    world.rt.engine.before_step = fail
    with pytest.raises(FuyunError) as err:
        service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert "injected" in err.value.message
    assert_rolled_back(world, vm, before, dig)
    assert identity(world.db, vm.id) == ident
    assert_snapshot_matches_store(world.rt)
    with world.db.read_session() as s:
        wf = s.scalar(select(Workflow).where(Workflow.kind == "vm.migrate"))
        assert wf is not None and wf.state == "rolled_back"


def test_compute_driver_failure_rolls_back(world: World) -> None:
    vm = world.vm("a", SOURCE)
    before, dig = books(world.db), digests(world.db)
    world.rt.driver.fail_on["migrate"] = "link down"  # type: ignore[attr-defined]
    with pytest.raises(DriverError):
        service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert_rolled_back(world, vm, before, dig)


def test_destination_that_does_not_converge_fails_before_the_vm_moves(world: World) -> None:
    vm = world.vm("a", SOURCE)
    before, dig = books(world.db), digests(world.db)
    world.rt.network.fail_on.add(TARGET)  # type: ignore[union-attr]
    with pytest.raises(DriverError) as err:
        service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert "did not converge" in err.value.message
    assert ("migrate", vm.id) not in world.rt.driver.calls  # type: ignore[attr-defined]
    assert_rolled_back(world, vm, before, dig)


def test_verify_violation_after_the_move_rolls_it_back(world: World) -> None:
    vm = world.vm("a", SOURCE)
    before, dig = books(world.db), digests(world.db)

    def corrupt(_wf: uuid.UUID, name: str) -> None:
        if name != "verify":
            return
        with world.db.write_session() as s:
            dev = s.scalar(
                select(DeviceState).where(
                    DeviceState.device_name == TARGET, DeviceState.enforcement_point == "vswitch"
                )
            )
            assert dev is not None
            ir = dict(dev.ir)
            # The device lost the VM's rules: its ports (sharing the lists) enforce nothing.
            lists = [{"in": [], "out": []} for _ in ir["rl"]]  # type: ignore[union-attr]
            assert lists != ir["rl"]
            dev.ir = {**ir, "rl": lists}

    world.rt.engine.before_step = corrupt
    with pytest.raises(FuyunError) as err:
        service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert err.value.code == "verify_failed"
    assert books(world.db) == before
    assert world.rt.driver.status(SOURCE, vm.id) is not None
    assert dig  # source device unchanged is checked by books and the driver


def test_a_stopped_vm_moves_and_stays_stopped(world: World) -> None:
    from fuyun.services import vms

    vm = world.vm("a", SOURCE)
    vms.power(world.rt, SYSTEM, vm.id, "stop")
    service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    with world.db.read_session() as s:
        assert s.get(Vm, vm.id).state == "stopped"  # type: ignore[union-attr]


def test_steps_are_recorded_before_they_run(world: World) -> None:
    vm = world.vm("a", SOURCE)
    seen: list[tuple[str, str]] = []

    def look(wf: uuid.UUID, name: str) -> None:
        with world.db.read_session() as s:
            row = s.scalar(
                select(WorkflowStep).where(
                    WorkflowStep.workflow_id == wf, WorkflowStep.name == name
                )
            )
            assert row is not None
            seen.append((name, row.state))

    world.rt.engine.before_step = look
    service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert seen == [(n, "running") for n in STEPS]


def test_without_a_reconciler_the_wait_for_the_destination_runs_out(world: World) -> None:
    vm = world.vm("a", SOURCE)
    before, dig = books(world.db), digests(world.db)
    world.rt.network = None  # nobody applies desired state: the generation never arrives
    with pytest.raises(DriverError) as err:
        service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert "did not converge" in err.value.message and TARGET in err.value.message
    assert_rolled_back(world, vm, before, dig)


def test_the_destination_is_fully_programmed_before_the_move_and_untouched_after(
    world: World,
) -> None:
    """Port map, policy and QoS of the target converge before the compute move, and
    nothing the cut-over, verify or cleanup does changes them: the VM lands on a
    switch that already forwards, tags, anti-spoofs and shapes for it."""
    qos_service.create_policy(
        world.db,
        SYSTEM,
        qos_service.PolicySpec("silver", guarantee_mbps=50, ceiling_mbps=200),
        tenant_id=world.tenant_id,
    )
    vm = world.vm("a", SOURCE, qos_policy="silver")
    world.vm("b", TARGET)
    result = service.migrate(world.rt, SYSTEM, vm.id, Target(host=TARGET))
    assert result.state == "succeeded"
    with world.db.read_session() as s:
        wf = s.get(Workflow, result.workflow_id)
        assert wf is not None
        awaited = wf.data["await"]
        rows = {
            r.enforcement_point: r
            for r in s.scalars(
                select(DeviceState).where(
                    DeviceState.device_type == "host", DeviceState.device_name == TARGET
                )
            )
        }
    assert {"ports", "vswitch", "qos"} <= set(rows)
    for ep, row in rows.items():
        assert str(row.id) in awaited, f"{ep} was not converged before the move"
        assert row.desired_generation == awaited[str(row.id)], f"{ep} changed after the move"
        assert row.applied_generation == row.desired_generation
    with world.db.read_session() as s:
        mine = {str(p) for p in s.scalars(select(Port.id).where(Port.vm_id == vm.id))}
    shaped = [
        (q.min_bps, q.max_bps)
        for q in HostQos.from_json(rows["qos"].rendered).ports
        if q.port_id in mine
    ]
    assert shaped == [(50_000_000, 200_000_000)]
