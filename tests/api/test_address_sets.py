"""Address sets: a member joining a group changes one stored set and bumps the devices
that refer to it, without recompiling them; every reader sees the new member."""

from __future__ import annotations

import ipaddress
import random
import re
import uuid
from collections.abc import Callable
from typing import Any

from alembic import command
from sqlalchemy import func, select, update

from fuyun.agent import HostAgent
from fuyun.agent.source import StoreSource
from fuyun.drivers.network.sim import SimNetworkDriver
from fuyun.policy.compile import referenced_sets
from fuyun.policy.ir import AddressSet, from_json
from fuyun.services import address_sets, agents
from fuyun.services.enforcement import all_hosts_with_ports, device_policies, rendered_text
from fuyun.services.reconcile import reconcile_once
from fuyun.store.migrate import alembic_config, upgrade
from fuyun.store.models import AddressSet as AddressSetRow
from fuyun.store.models import (
    AddressSetMember,
    DeviceAddressSet,
    DeviceState,
    Host,
    Module,
    Network,
    Port,
)
from fuyun.verify.reachability import analyse, endpoint_reach
from tests.api.conftest import Api, TenantAccount

Tenant = Callable[..., TenantAccount]


def _admits(text: str, ip: str) -> bool:
    """Whether an address set in this rendered text holds ``ip`` (the renderers merge
    members into prefixes, so a plain substring test would not do)."""
    address = ipaddress.ip_address(ip)
    for body in re.findall(r"set sg_\w+ \{(.*?)\n\t\}", text, re.S):
        for item in re.findall(r"[0-9a-f:.]+/\d+|\d+\.\d+\.\d+\.\d+", body):
            if address in ipaddress.ip_network(item, strict=False):
                return True
    return False


def _vm(api: Api, t: TenantAccount, name: str, host: str, **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "flavor": "s1.small",
        "networks": ["app"],
        "host": host,
        "tenant_id": t.id,
        **extra,
    }
    r = api.client.post("/api/v1/vms", headers=api.op, json=body)
    assert r.status_code == 201, r.text
    return r.json()["items"][0]


def _network(api: Api, t: TenantAccount) -> None:
    r = api.client.post(
        "/api/v1/networks",
        headers=t.headers,
        json={"name": "app", "cidr": "10.7.0.0/24", "site": "sz1"},
    )
    assert r.status_code == 201, r.text


def _vswitch_hosts(api: Api) -> list[str]:
    """Hosts of the tenant network's module, which enforces on each host's vswitch."""
    with api.db.read_session() as s:
        module_id = s.scalar(select(Network.module_id).where(Network.name == "app").limit(1))
        module = s.get(Module, module_id)
        assert module is not None and module.enforcement_point == "vswitch", module
        return sorted(s.scalars(select(Host.name).where(Host.module_id == module_id)))


def _security_devices(api: Api) -> dict[str, DeviceState]:
    with api.db.read_session() as s:
        rows = s.scalars(
            select(DeviceState).where(DeviceState.enforcement_point.in_(["vswitch", "tor-acl"]))
        )
        return {f"{r.device_type}/{r.device_name}": r for r in rows}


def _groups_of(s: Any, port_id: uuid.UUID) -> set[uuid.UUID]:
    from fuyun.store.models import PortSecurityGroup

    return set(
        s.scalars(select(PortSecurityGroup.group_id).where(PortSecurityGroup.port_id == port_id))
    )


def _staged(api: Api, make_tenant: Tenant, spread: int = 4) -> tuple[TenantAccount, list[str]]:
    """A tenant whose default group (ingress from its own members) has VMs on ``spread``
    hosts; answers the tenant and the hosts, the first ``spread`` used."""
    t = make_tenant("acme")
    _network(api, t)
    hosts = sorted(_vswitch_hosts(api))
    for i, host in enumerate(hosts[:spread]):
        _vm(api, t, f"vm{i}", host)
    return t, hosts


def test_a_member_joining_changes_one_set_and_bumps_referring_devices(
    api: Api, make_tenant: Tenant
) -> None:
    t, hosts = _staged(api, make_tenant, spread=4)
    before = _security_devices(api)
    with api.db.read_session() as s:
        sets_before = {r.name: (r.generation, r.size) for r in s.scalars(select(AddressSetRow))}
        referring = {
            f"{d.device_type}/{d.device_name}"
            for d in s.scalars(
                select(DeviceState).join(
                    DeviceAddressSet, DeviceAddressSet.device_id == DeviceState.id
                )
            )
        }
    assert len(referring) >= 2, "the default group's rule refers to its own set on every host"
    newcomer = _vm(api, t, "late", hosts[6])
    after = _security_devices(api)
    with api.db.read_session() as s:
        sets_after = {r.name: (r.generation, r.size) for r in s.scalars(select(AddressSetRow))}
    changed_sets = {n for n in sets_after if sets_after[n] != sets_before.get(n)}
    assert len(changed_sets) == 1, changed_sets  # the default group's v4 set, one row
    (name,) = changed_sets
    assert sets_after[name] == (sets_before[name][0] + 1, sets_before[name][1] + 1)
    own = {k for k, d in after.items() if d.device_name == hosts[6]}
    for key in referring - own:
        old, new = before[key], after[key]
        assert new.digest == old.digest and new.ir == old.ir, f"{key} was recompiled"
        assert new.desired_generation == old.desired_generation + 1, key
        assert new.applied_generation < new.desired_generation, f"{key} shows as lagging"
    # The newcomer's address is in the set, and readers that hydrate see it.
    with api.db.read_session() as s:
        members = address_sets.contents(s, [name])[name]
        port = s.scalar(select(Port).where(Port.vm_id == uuid.UUID(newcomer["id"])))
        assert port is not None
    new_ips = {a for a in members} - _members_without(api, port.id, name)
    assert len(new_ips) == 1
    some = sorted(referring - own)[0]
    dtype, dname = some.split("/")
    ep = before[some].enforcement_point
    config = api.client.get(
        f"/api/v1/devices/{dtype}/{dname}", headers=api.op, params={"enforcement_point": ep}
    ).json()
    assert _admits(config["rendered"], next(iter(new_ips)))


def _members_without(api: Api, port_id: uuid.UUID, name: str) -> set[str]:
    with api.db.read_session() as s:
        rows = s.execute(
            select(AddressSetMember.address).where(
                AddressSetMember.set_name == name, AddressSetMember.port_id != port_id
            )
        ).all()
        from fuyun.ipam.addresses import to_address, unpack

        return {str(to_address(unpack(r[0]), 4)) for r in rows}


def test_the_reconciler_applies_new_members_to_referring_devices(
    api: Api, make_tenant: Tenant
) -> None:
    t, hosts = _staged(api, make_tenant, spread=3)
    driver = SimNetworkDriver()
    assert reconcile_once(api.db, driver).failed == 0
    newcomer = _vm(api, t, "late", hosts[5])
    ip = _port_ip(api, newcomer["id"])
    lagging = api.client.get("/api/v1/devices", headers=api.op, params={"lagging": True}).json()
    names = {d["device_name"] for d in lagging}
    assert set(hosts[:3]) <= names, "every host referring to the group lags"
    for host in hosts[:3]:
        assert not _admits(driver.config("host", host, "vswitch") or "", ip)
    assert reconcile_once(api.db, driver).failed == 0
    for host in hosts[:3]:
        assert _admits(driver.config("host", host, "vswitch") or "", ip), host
    assert not api.client.get("/api/v1/devices", headers=api.op, params={"lagging": True}).json()
    # The member leaves: the set shrinks, the devices lag again, then enforce without it.
    r = api.client.delete(f"/api/v1/vms/{newcomer['id']}", headers=api.op)
    assert r.status_code in (200, 202, 204), r.text
    assert reconcile_once(api.db, driver).failed == 0
    for host in hosts[:3]:
        assert not _admits(driver.config("host", host, "vswitch") or "", ip), host


def test_a_host_agent_applies_new_members(api: Api, make_tenant: Tenant) -> None:
    t, hosts = _staged(api, make_tenant, spread=2)
    driver = SimNetworkDriver()
    agent = HostAgent(StoreSource(api.db), driver, audit_interval_s=0)
    agent.reconcile_all(hosts[:2])
    newcomer = _vm(api, t, "late", hosts[4])
    ip = _port_ip(api, newcomer["id"])
    assert not _admits(driver.config("host", hosts[0], "vswitch") or "", ip)
    passes = agent.reconcile_all(hosts[:2])
    assert all("vswitch" in p.applied for p in passes)
    for host in hosts[:2]:
        assert _admits(driver.config("host", host, "vswitch") or "", ip), host
    lagging = api.client.get("/api/v1/devices", headers=api.op, params={"lagging": True}).json()
    assert not {d["device_name"] for d in lagging} & set(hosts[:2])
    # An agent over the API reads the same: its desired state carries the new member.
    with api.db.read_session() as s:
        host = s.scalar(select(Host).where(Host.name == hosts[0]))
    assert host is not None
    view = agents.desired_state(api.db, host)
    (policy,) = [d for d in view.devices if d.enforcement_point == "vswitch"]
    assert _admits(policy.rendered, ip)


def _port_ip(api: Api, vm_id: str) -> str:
    with api.db.read_session() as s:
        port = s.scalar(select(Port).where(Port.vm_id == uuid.UUID(vm_id)))
        assert port is not None
        rows = s.execute(
            select(AddressSetMember.address).where(AddressSetMember.port_id == port.id)
        ).all()
        from fuyun.ipam.addresses import to_address, unpack

        (ip,) = {str(to_address(unpack(r[0]), 4)) for r in rows}
        return ip


def test_verify_sees_a_member_added_after_compile_and_unhydrated_readers_fail_closed(
    api: Api, make_tenant: Tenant
) -> None:
    t, hosts = _staged(api, make_tenant, spread=2)
    newcomer = _vm(api, t, "late", hosts[4])
    report = api.client.get("/api/v1/verify", headers=api.op).json()
    assert report["ok"] is True, report
    with api.db.read_session() as s:
        rows = list(s.scalars(select(DeviceState).where(DeviceState.device_name.in_(hosts[:2]))))
        policies = [from_json(r.ir) for r in rows if r.enforcement_point == "vswitch"]
        hydrated = address_sets.hydrate_all(s, policies)
        text_now = [
            address_sets.device_text(s, r.rendered, r.ir, r.flavor, r.digest)
            for r in rows
            if r.enforcement_point == "vswitch"
        ]
        text_bare = [
            rendered_text(r.rendered, r.ir, r.flavor)
            for r in rows
            if r.enforcement_point == "vswitch"
        ]
    ip = _port_ip(api, newcomer["id"])
    # Hydrated: the older members accept the newcomer (the default group's ingress rule).
    assert any(ip in a.addresses for p in hydrated for a in p.sets)
    assert all(_admits(text, ip) for text in text_now)
    # Not hydrated (a reader that forgot): the sets are empty, nobody is let in by them.
    assert all(not a.addresses for p in policies for a in p.sets)
    assert not any(_admits(text, ip) for text in text_bare)
    # verify's own analysis of every stored device: the newcomer (compiled after the
    # others) reaches the older members through their sets; unhydrated, nobody does.
    with api.db.read_session() as s:
        everything = [
            from_json(r.ir)
            for r in s.scalars(
                select(DeviceState).where(DeviceState.enforcement_point == "vswitch")
            )
        ]
        full = analyse(address_sets.hydrate_all(s, everything))
        newcomer_port = s.scalar(select(Port.id).where(Port.vm_id == uuid.UUID(newcomer["id"])))
    assert any(src == newcomer_port for src, _dst, _svc in endpoint_reach(full))
    assert not analyse(everything).reach


def test_hydrated_policies_equal_the_inline_compile_after_random_changes(
    api: Api, make_tenant: Tenant
) -> None:
    """Property: whatever sequence of creates, deletes and group changes, every stored
    device hydrated equals what compiling with the members inline (as before) gives."""
    rng = random.Random(20261126)
    tenants = [make_tenant("acme"), make_tenant("zeta")]
    for t in tenants:
        _network(api, t)
        for g in ("web", "db"):
            r = api.client.post("/api/v1/security-groups", headers=t.headers, json={"name": g})
            assert r.status_code == 201, r.text
        r = api.client.post(
            "/api/v1/security-groups/" + _group_id(api, t, "db") + "/rules",
            headers=t.headers,
            json={
                "direction": "ingress",
                "protocol": "tcp",
                "port_min": 5432,
                "remote_group": "web",
            },
        )
        assert r.status_code == 201, r.text
    hosts = sorted(_vswitch_hosts(api))
    # A first VM each, in the tenant's default group (made when a VM names no group).
    live = [(t, _vm(api, t, "first", hosts[i])["id"]) for i, t in enumerate(tenants)]
    for step in range(14):
        action = rng.choice(["create", "create", "create", "delete", "regroup"])
        if action == "create" or not live:
            t = rng.choice(tenants)
            groups = rng.sample(["web", "db", "default"], rng.randint(1, 2))
            vm = _vm(api, t, f"v{step}", rng.choice(hosts[:6]), security_groups=groups)
            live.append((t, vm["id"]))
        elif action == "delete":
            t, vm_id = live.pop(rng.randrange(len(live)))
            r = api.client.delete(f"/api/v1/vms/{vm_id}", headers=api.op)
            assert r.status_code in (200, 202, 204), r.text
        else:
            t, vm_id = rng.choice(live)
            with api.db.read_session() as s:
                port_id = s.scalar(select(Port.id).where(Port.vm_id == uuid.UUID(vm_id)))
            groups = rng.sample(["web", "db", "default"], rng.randint(1, 3))
            r = api.client.put(
                f"/api/v1/ports/{port_id}/security-groups",
                headers=t.headers,
                json={"security_groups": groups},
            )
            assert r.status_code == 200, r.text
        _assert_equivalent(api)


def _group_id(api: Api, t: TenantAccount, name: str) -> str:
    groups = api.client.get("/api/v1/security-groups", headers=t.headers).json()
    items = groups["items"] if isinstance(groups, dict) else groups
    return next(g["id"] for g in items if g["name"] == name)


def _assert_equivalent(api: Api) -> None:
    with api.db.read_session() as s:
        stored = {
            (r.device_type, r.device_name): r
            for r in s.scalars(
                select(DeviceState).where(DeviceState.enforcement_point.in_(["vswitch", "tor-acl"]))
            )
        }
        fresh = device_policies(s, all_hosts_with_ports(s))
        groups = {uuid.UUID(a.name[3:35]) for _, _, p in fresh for a in p.sets}
        inline = address_sets.members_from_intent(s, groups)
        # The old compile: every set carried its members, derived from intent right now.
        for dtype, _flavor, policy in fresh:
            assert {a.name for a in policy.sets} == referenced_sets(policy.ports)
            expect = [
                AddressSet(a.name, a.family, inline.get(a.name, frozenset())) for a in policy.sets
            ]
            row = stored[(dtype, policy.device)]
            got = address_sets.stored_policy(s, row.ir)
            assert got.ports == policy.ports, policy.device
            assert list(got.sets) == expect, policy.device
        # And the members stored equal the members derived: no stale row anywhere.
        total = s.scalar(select(func.count()).select_from(AddressSetMember))
        assert total == sum(
            len(v)
            for v in address_sets.members_from_intent(
                s, set(s.scalars(select(AddressSetRow.group_id)))
            ).values()
        )


def test_upgrading_a_store_fills_sets_and_references_from_what_it_holds(
    api: Api, make_tenant: Tenant
) -> None:
    _staged(api, make_tenant, spread=3)

    def state() -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
        with api.db.read_session() as s:
            members = set(
                s.execute(
                    select(
                        AddressSetMember.set_name,
                        AddressSetMember.port_id,
                        AddressSetMember.address,
                        AddressSetMember.host_id,
                    )
                )
            )
            refs = set(s.execute(select(DeviceAddressSet.device_id, DeviceAddressSet.set_name)))
        return members, refs

    before = state()
    assert before[0] and before[1]
    command.downgrade(alembic_config(api.db.engine), "-1")  # a store from before the sets
    with api.db.write_session() as s:  # then, a policy's text was stored with its members
        s.execute(
            update(DeviceState)
            .where(DeviceState.enforcement_point == "vswitch")
            .values(rendered="members as they were")
        )
    upgrade(api.db.engine)
    assert state() == before
    with api.db.read_session() as s:
        texts = set(
            s.scalars(
                select(DeviceState.rendered).where(DeviceState.enforcement_point == "vswitch")
            )
        )
    assert texts == {""}, "rendered on read from now on, with the sets' members"
    with api.db.read_session() as s:
        sizes = {r.name: r.size for r in s.scalars(select(AddressSetRow))}
    assert sizes == {n: sum(1 for m in before[0] if m[0] == n) for n in sizes}


def test_sets_are_listed_with_version_size_and_referrers_to_whom_may_see_them(
    api: Api, make_tenant: Tenant
) -> None:
    t, hosts = _staged(api, make_tenant, spread=3)
    other = make_tenant("other")
    listed = api.client.get("/api/v1/address-sets", headers=t.headers).json()
    (v4,) = [s for s in listed if s["family"] == 4]
    assert v4["size"] == 3 and v4["devices"] == 3 and v4["tenant_id"] == t.id
    assert api.client.get("/api/v1/address-sets", headers=other.headers).json() == []
    r = api.client.get(f"/api/v1/address-sets/{v4['name']}", headers=other.headers)
    assert r.status_code == 404 and r.json()["error"]["field"] == "name"
    _vm(api, t, "late", hosts[4])
    detail = api.client.get(f"/api/v1/address-sets/{v4['name']}", headers=api.op).json()
    assert detail["generation"] == v4["generation"] + 1 and len(detail["addresses"]) == 4
    by_group = api.client.get(
        "/api/v1/address-sets", headers=api.op, params={"group_id": v4["group_id"]}
    ).json()
    assert [s["name"] for s in by_group] == [v4["name"]]
