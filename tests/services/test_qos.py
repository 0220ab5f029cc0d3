"""QoS policies and admission control through the services, on a real SQLite store.

Guarantees are admitted on the host uplink, the ToR uplink and the tenant's
quota together, or not at all; refusals name the link; the host and ToR QoS
documents change generation only when their content changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from fuyun.domain.errors import CapacityExhausted, Conflict, InvalidInput, QuotaExceeded
from fuyun.domain.qos import HostQos
from fuyun.services import qos, vms
from fuyun.services.principal import SYSTEM
from fuyun.services.qos import PolicySpec
from fuyun.services.qos_admission import move_ports
from fuyun.store.engine import Database
from fuyun.store.models import AuditEvent, Port, QosClaim, Vm
from tests.services.qos_world import H1, H2, OTHER_TOR_HOST, TOR, World, make_world

FLAVOR_MBPS = 100  # s1.small


@pytest.fixture
def world(db: Database) -> Iterator[World]:
    yield make_world(db)


def _policy(w: World, name: str, g: int, c: int, scope: str = "port", burst: int = 0) -> str:
    qos.create_policy(w.db, SYSTEM, PolicySpec(name, scope, g, c, burst), tenant_id=w.tenant_id)
    return name


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (PolicySpec("p", "port", 200, 100), "guarantee_mbps"),
        (PolicySpec("p", "port", 0, 0), "ceiling_mbps"),
        (PolicySpec("p", "port", -1, 100), "guarantee_mbps"),
        (PolicySpec("p", "port", 10, 100, -5), "burst_bytes"),
        (PolicySpec("p", "port", 10, 30_000), "ceiling_mbps"),  # above any host NIC
        (PolicySpec("p", "both", 10, 100), "scope"),
        (PolicySpec("-bad", "port", 10, 100), "name"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(
    world: World, spec: PolicySpec, field: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        qos.create_policy(world.db, SYSTEM, spec, tenant_id=world.tenant_id)
    assert err.value.field == field


def test_attach_admits_on_host_tor_and_quota_and_compiles(world: World) -> None:
    vm = world.vm("a", H1)
    base_host, base_tor, base_quota = (
        world.host(H1).used_bandwidth_mbps,
        world.tor().used_bandwidth_mbps,
        world.quota_used(),
    )
    _policy(world, "gold", 300, 1000, burst=65536)
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, "gold")
    assert world.host(H1).used_bandwidth_mbps == base_host + 300
    assert world.tor().used_bandwidth_mbps == base_tor + 300
    assert world.quota_used() == base_quota + 300
    doc = world.device("host", H1)
    assert doc is not None and doc.desired_generation == 1 and doc.flavor == "linux-bridge"
    host_qos = HostQos.from_json(doc.rendered)
    assert host_qos.uplink_bps == world.host(H1).nic_mbps * 1_000_000
    [port] = host_qos.ports
    assert (port.min_bps, port.max_bps, port.burst_bytes) == (300_000_000, 1_000_000_000, 65536)
    assert port.vm == "a" and port.tenant == "studio"
    [tenant] = host_qos.tenants
    assert tenant.min_bps == 300_000_000 and tenant.port_ids == (port.port_id,)
    tor = world.device("switch", TOR)
    assert tor is not None and "queue af bandwidth 300000" in tor.rendered  # comware ToR
    with world.db.read_session() as s:
        events = s.scalars(
            select(AuditEvent.action).where(AuditEvent.tenant_id == world.tenant_id)
        ).all()
    assert "qos-policy.create" in events and "vm.qos" in events


def test_generation_moves_only_when_the_document_changes(world: World) -> None:
    vm = world.vm("a", H1)
    _policy(world, "gold", 300, 1000)
    _policy(world, "silver", 100, 500)
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, "gold")
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, "gold")
    doc = world.device("host", H1)
    assert doc is not None and doc.desired_generation == 1, "re-attaching changes nothing"
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, "silver")
    assert world.device("host", H1).desired_generation == 2  # type: ignore[union-attr]
    policy = next(p for p in qos.list_policies(world.db, SYSTEM) if p.name == "silver")
    qos.update_policy(world.rt, SYSTEM, policy.id, ceiling_mbps=600)
    doc = world.device("host", H1)
    assert doc is not None and doc.desired_generation == 3
    assert HostQos.from_json(doc.rendered).ports[0].max_bps == 600_000_000
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, None)
    doc = world.device("host", H1)
    assert doc is not None and doc.desired_generation == 4
    assert HostQos.from_json(doc.rendered).ports == ()


def test_host_uplink_refusal_names_the_host_and_changes_nothing(world: World) -> None:
    vm = world.vm("a", H1)
    world.set_host_nic(H1, FLAVOR_MBPS + 250)
    _policy(world, "gold", 300, 300)
    before = (world.host(H1).used_bandwidth_mbps, world.tor().used_bandwidth_mbps)
    with pytest.raises(CapacityExhausted) as err:
        qos.set_vm_policy(world.rt, SYSTEM, vm.id, "gold")
    assert err.value.code == "admission_refused" and err.value.field == "qos_policy"
    assert f"host uplink of {H1}" in err.value.message and "250 left" in err.value.message
    assert (world.host(H1).used_bandwidth_mbps, world.tor().used_bandwidth_mbps) == before
    with world.db.read_session() as s:
        assert s.scalar(select(Port.qos_policy_id).where(Port.vm_id == vm.id)) is None
        failed = s.scalar(
            select(AuditEvent).where(AuditEvent.action == "vm.qos", AuditEvent.result == "failure")
        )
    assert failed is not None and failed.detail["error"] == "admission_refused"


def test_tor_uplink_refusal_names_the_tor(world: World) -> None:
    a, b = world.vm("a", H1), world.vm("b", H2)
    world.set_tor_uplink(500)
    _policy(world, "gold", 300, 1000)
    qos.set_vm_policy(world.rt, SYSTEM, a.id, "gold")
    with pytest.raises(CapacityExhausted) as err:
        qos.set_vm_policy(world.rt, SYSTEM, b.id, "gold")
    assert f"ToR uplink of {TOR}" in err.value.message
    assert "300 of 500 Mbit/s already guaranteed, 200 left" in err.value.message
    assert world.tor().used_bandwidth_mbps == 300
    assert world.host(H2).used_bandwidth_mbps == FLAVOR_MBPS, "the host claim rolled back too"


def test_quota_limits_total_guaranteed_bandwidth(db: Database) -> None:
    w = make_world(db, bandwidth_quota=FLAVOR_MBPS + 250)
    vm = w.vm("a", H1)
    _policy(w, "gold", 300, 1000)
    with pytest.raises(QuotaExceeded) as err:
        qos.set_vm_policy(w.rt, SYSTEM, vm.id, "gold")
    assert err.value.field == "bandwidth_mbps"
    assert w.host(H1).used_bandwidth_mbps == FLAVOR_MBPS


def test_vm_create_with_policy_and_delete_gives_everything_back(world: World) -> None:
    _policy(world, "gold", 300, 1000)
    base_tor = world.tor().used_bandwidth_mbps
    vm = world.vm("a", H1, qos_policy="gold")
    assert world.host(H1).used_bandwidth_mbps == FLAVOR_MBPS + 300
    assert world.tor().used_bandwidth_mbps == base_tor + 300
    assert len(HostQos.from_json(world.device("host", H1).rendered).ports) == 1  # type: ignore[union-attr]
    vms.delete_vm(world.rt, SYSTEM, vm.id)
    assert world.host(H1).used_bandwidth_mbps == 0
    assert world.tor().used_bandwidth_mbps == base_tor
    assert world.quota_used() == 0
    doc = world.device("host", H1)
    assert doc is not None and doc.desired_generation == 2
    assert HostQos.from_json(doc.rendered).ports == ()


def test_vm_create_is_refused_when_the_pinned_host_cannot_guarantee(world: World) -> None:
    world.set_host_nic(H1, FLAVOR_MBPS + 100)
    _policy(world, "gold", 300, 1000)
    with pytest.raises(CapacityExhausted) as err:
        world.vm("a", H1, qos_policy="gold")
    assert "nic-bandwidth" in err.value.message and "400 Mbit/s guaranteed" in err.value.message
    assert world.host(H1).used_bandwidth_mbps == 0


def test_scheduler_steers_around_a_full_tor_uplink(world: World) -> None:
    world.set_tor_uplink(200)
    _policy(world, "gold", 300, 1000)
    created = vms.create_vms(
        world.rt,
        SYSTEM,
        vms.VmRequest(
            name="x",
            flavor="s1.small",
            networks=("net",),
            tenant_id=world.tenant_id,
            qos_policy="gold",
        ),
    )
    [vm] = created.vms
    assert world.host(H1).id != vm.host_id and world.host(H2).id != vm.host_id
    assert world.tor().used_bandwidth_mbps == 0


def test_tenant_aggregate_raises_the_floor_and_caps_the_sum(world: World) -> None:
    a = world.vm("a", H1)
    world.vm("b", H1)
    _policy(world, "gold", 300, 1000)
    _policy(world, "agg", 500, 800, scope="tenant")
    qos.set_vm_policy(world.rt, SYSTEM, a.id, "gold")
    qos.set_tenant_policy(world.rt, SYSTEM, world.tenant_id, "agg")
    assert world.host(H1).used_bandwidth_mbps == 2 * FLAVOR_MBPS + 500
    doc = HostQos.from_json(world.device("host", H1).rendered)  # type: ignore[union-attr]
    [tenant] = doc.tenants
    assert (tenant.min_bps, tenant.max_bps) == (500_000_000, 800_000_000)
    assert len(tenant.port_ids) == 2, "every port of the tenant joins its class"
    _policy(world, "big", 600, 1000)
    with pytest.raises(Conflict, match="aggregate ceiling of 800"):
        qos.set_port_policy(world.rt, SYSTEM, _ports(world, "b")[0], "big")
    qos.set_tenant_policy(world.rt, SYSTEM, world.tenant_id, None)
    assert world.host(H1).used_bandwidth_mbps == 2 * FLAVOR_MBPS + 300


def test_a_guarantee_moves_with_its_port(world: World) -> None:
    vm = world.vm("a", H1)
    _policy(world, "gold", 300, 1000)
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, "gold")
    dest = world.host(OTHER_TOR_HOST)
    with world.db.write_session() as s:
        move_ports(s, _ports(world, "a"), dest.id)
    assert world.host(H1).used_bandwidth_mbps == FLAVOR_MBPS  # the flavor moves elsewhere
    assert world.host(OTHER_TOR_HOST).used_bandwidth_mbps == 300
    assert world.tor().used_bandwidth_mbps == 0
    assert world.tor("sz1-m01-t02").used_bandwidth_mbps == 300
    assert HostQos.from_json(world.device("host", H1).rendered).ports == ()  # type: ignore[union-attr]
    assert len(HostQos.from_json(world.device("host", OTHER_TOR_HOST).rendered).ports) == 1  # type: ignore[union-attr]
    with world.db.read_session() as s:
        claims = {(c.host_id, c.guaranteed_mbps) for c in s.scalars(select(QosClaim))}
    assert claims == {(dest.id, 300)}


def test_a_move_to_a_host_without_room_is_refused_and_nothing_moves(world: World) -> None:
    vm = world.vm("a", H1)
    _policy(world, "gold", 300, 1000)
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, "gold")
    world.set_host_nic(H2, 200)
    ports, dest = _ports(world, "a"), world.host(H2).id
    with (
        pytest.raises(CapacityExhausted, match=f"host uplink of {H2}"),
        world.db.write_session() as s,
    ):
        move_ports(s, ports, dest)
    assert world.host(H1).used_bandwidth_mbps == FLAVOR_MBPS + 300
    with world.db.read_session() as s:
        assert s.scalar(select(Port.host_id).where(Port.vm_id == vm.id)) == world.host(H1).id


def test_a_policy_in_use_cannot_be_deleted(world: World) -> None:
    vm = world.vm("a", H1)
    _policy(world, "gold", 300, 1000)
    qos.set_vm_policy(world.rt, SYSTEM, vm.id, "gold")
    policy = next(p for p in qos.list_policies(world.db, SYSTEM) if p.name == "gold")
    with pytest.raises(Conflict, match="on 1 ports"):
        qos.delete_policy(world.db, SYSTEM, policy.id)


def _ports(w: World, vm_name: str) -> list[uuid.UUID]:
    with w.db.read_session() as s:
        return list(
            s.scalars(select(Port.id).join(Vm, Vm.id == Port.vm_id).where(Vm.name == vm_name))
        )


def test_verify_reads_security_policy_only(world: World) -> None:
    from fuyun.services import verification

    _policy(world, "gold", 300, 1000)
    world.vm("a", H1, qos_policy="gold")
    assert world.device("host", H1) is not None
    report = verification.verify(world.db, SYSTEM)
    assert report.ok and report.devices > 0


def test_an_unshaped_vm_joins_its_tenant_class_on_a_shaped_host(world: World) -> None:
    _policy(world, "gold", 300, 1000)
    world.vm("a", H1, qos_policy="gold")
    world.vm("b", H1)
    doc = HostQos.from_json(world.device("host", H1).rendered)  # type: ignore[union-attr]
    assert sorted((p.vm, p.min_bps) for p in doc.ports) == [("a", 300_000_000), ("b", 0)]
    assert len(doc.tenants[0].port_ids) == 2
    assert world.device("host", H1).desired_generation == 2  # type: ignore[union-attr]


def test_qos_documents_converge_through_the_network_driver(world: World) -> None:
    from fuyun.drivers.network.sim import SimNetworkDriver
    from fuyun.services.reconcile import reconcile_once

    _policy(world, "gold", 300, 1000)
    world.vm("a", H1, qos_policy="gold")
    driver = SimNetworkDriver()
    reconcile_once(world.db, driver)
    doc = world.device("host", H1)
    assert doc is not None and doc.applied_generation == doc.desired_generation
    applied = HostQos.from_json(driver.config("host", H1, "qos"))  # type: ignore[arg-type]
    assert applied.ports[0].min_bps == 300_000_000
    tor = world.device("switch", TOR)
    assert tor is not None and tor.applied_generation == tor.desired_generation


def test_explain_counts_the_vms_guarantees_on_the_tor_uplink(world: World) -> None:
    _policy(world, "gold", 300, 1000)
    vm = world.vm("a", H1, qos_policy="gold")
    world.set_tor_uplink(200, name="sz1-m01-t02")
    verdicts = dict(vms.explain(world.rt, SYSTEM, vm.id, OTHER_TOR_HOST).verdicts)
    assert "ToR sz1-m01-t02's uplink, 200 left" in (verdicts["nic-bandwidth"] or "")


def test_a_tor_without_a_qos_dialect_still_converges(world: World) -> None:
    from sqlalchemy import update as sql_update

    from fuyun.drivers.network.sim import SimNetworkDriver
    from fuyun.services.reconcile import reconcile_once
    from fuyun.store.models import Switch

    with world.db.write_session() as s:
        s.execute(sql_update(Switch).where(Switch.name == TOR).values(platform="ovs"))
    _policy(world, "gold", 300, 1000)
    world.vm("a", H1, qos_policy="gold")
    tor = world.device("switch", TOR)
    assert tor is not None and tor.rendered.startswith("{")
    reconcile_once(world.db, SimNetworkDriver())
    tor = world.device("switch", TOR)
    assert tor is not None and tor.applied_generation == tor.desired_generation
