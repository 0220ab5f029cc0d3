"""A ToR's trunk per host: allowed VLANs are exactly those of the ports on that host."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import select

from fuyun.policy.ir import from_json
from fuyun.policy.render.comware import render as render_comware
from fuyun.policy.render.nxos_parse import parse_nxos
from fuyun.services.enforcement import recompile
from fuyun.services.ports import bind_port_host
from fuyun.store.models import DeviceState, Host, Module, Port, Segment, Switch
from tests.api.conftest import Api, TenantAccount

Tenant = Callable[..., TenantAccount]


def _tor_config(api: Api) -> tuple[str, DeviceState, str]:
    tors = [
        d
        for d in api.client.get("/api/v1/devices", headers=api.op).json()
        if d["device_type"] == "switch"
    ]
    assert len(tors) == 1
    r = api.client.get(f"/api/v1/devices/switch/{tors[0]['device_name']}", headers=api.op)
    assert r.status_code == 200, r.text
    with api.db.read_session() as s:
        row = s.scalars(select(DeviceState).where(DeviceState.device_type == "switch")).one()
        s.expunge(row)
    return tors[0]["device_name"], row, r.json()["rendered"]


def test_each_host_interface_trunks_only_its_ports_vlans_and_a_move_changes_both(
    api: Api, make_tenant: Tenant
) -> None:
    api.enforce_at_tors()
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/server-groups",
        headers=acme.headers,
        json={"name": "apart", "policy": "anti-affinity", "level": "host"},
    )
    assert r.status_code == 201, r.text
    for name, cidr in (("front", "10.1.0.0/24"), ("back", "10.2.0.0/24")):
        r = api.client.post(
            "/api/v1/networks",
            headers=api.op,
            json={"name": name, "cidr": cidr, "module": "sz1-m01", "tenant_id": acme.id},
        )
        assert r.status_code == 201, r.text
    vms = {}
    for name, network in (("f", "front"), ("b", "back")):
        r = api.client.post(
            "/api/v1/vms",
            headers=acme.headers,
            json={"name": name, "flavor": "s1.small", "networks": [network], "group": "apart"},
        )
        assert r.status_code == 201, r.text
        vms[name] = api.client.get(
            f"/api/v1/vms/{r.json()['items'][0]['id']}", headers=api.op
        ).json()
    with api.db.read_session() as s:
        port_of = {
            n: s.scalars(select(Port).where(Port.vm_id == uuid.UUID(v["id"]))).one()
            for n, v in vms.items()
        }
        vlan_of = {
            n: s.scalar(select(Segment.vlan).where(Segment.id == p.segment_id))
            for n, p in port_of.items()
        }
        host_of = {n: s.get(Host, p.host_id) for n, p in port_of.items()}
        tor_id = host_of["f"].tor_id
        cabled = {h.name: h.tor_port for h in s.scalars(select(Host).where(Host.tor_id == tor_id))}
    assert vlan_of["f"] != vlan_of["b"]
    assert host_of["f"].tor_id == host_of["b"].tor_id, "one ToR for the module"

    tor, row, text = _tor_config(api)
    parsed = parse_nxos(text)
    # One trunk per host cabled to the ToR, on the host's interface from the inventory.
    assert {host: iface for iface, (host, _) in parsed.trunks.items()} == cabled
    allowed = {host: vlans for host, vlans in parsed.trunks.values()}
    assert allowed[host_of["f"].name] == (vlan_of["f"],)
    assert allowed[host_of["b"].name] == (vlan_of["b"],)
    assert all(
        v == () for h, v in allowed.items() if h not in (host_of["f"].name, host_of["b"].name)
    )
    # The ToR still carries both VLANs (the per-ToR list is kept).
    assert {vlan_of["f"], vlan_of["b"]} <= set(parsed.vlans)
    # Comware spells the same trunks.
    comware = render_comware(from_json(row.ir))
    f_iface = host_of["f"].tor_port
    assert f"interface {f_iface}\n description fuyun host {host_of['f'].name}\n" in comware
    assert f" port trunk permit vlan {vlan_of['f']}\n" in comware

    # Move f's port to b's host (the other host under the ToR): both hosts' trunks change.
    target = host_of["b"].name
    with api.db.write_session() as s:
        port = s.get(Port, port_of["f"].id)
        dest = s.scalars(select(Host).where(Host.name == target)).one()
        source = port.host_id
        bind_port_host(s, port, dest.id)
        compiled = recompile(s, {source, dest.id})
        assert compiled.changed >= 1
    _, moved, text = _tor_config(api)
    assert moved.desired_generation == row.desired_generation + 1
    after = {host: vlans for host, vlans in parse_nxos(text).trunks.values()}
    assert after[target] == tuple(sorted((vlan_of["f"], vlan_of["b"])))
    assert after[host_of["f"].name] == ()
    assert tor == moved.device_name


def test_a_host_added_by_the_api_keeps_its_interface_and_recabling_moves_its_trunk(
    api: Api, make_tenant: Tenant
) -> None:
    api.enforce_at_tors()
    with api.db.write_session() as s:
        first = s.scalars(select(Host).order_by(Host.name)).first()
        assert first is not None
        tor = s.get_one(Switch, first.tor_id)
        model = first.server_model_id
        taken = {h.tor_port for h in s.scalars(select(Host).where(Host.tor_id == tor.id))}
        module_name = s.get_one(Module, tor.module_id).name
    body = {"tor": tor.name, "server_model": str(model)}
    r = api.client.post("/api/v1/hosts", headers=api.op, json={"name": "added-1", **body})
    assert r.status_code == 201, r.text
    one = r.json()
    assert one["tor_port"] and one["tor_port"] not in taken  # stored at once, not derived later
    r = api.client.post("/api/v1/hosts", headers=api.op, json={"name": "added-2", **body})
    assert r.status_code == 201, r.text
    assert r.json()["tor_port"] not in taken | {one["tor_port"]}
    # Adding a host never moved the first one.
    again = api.client.get(f"/api/v1/hosts/{one['id']}", headers=api.op).json()
    assert again["tor_port"] == one["tor_port"]
    # Cabling onto an interface another host holds is refused, naming the field.
    r = api.client.post(
        "/api/v1/hosts",
        headers=api.op,
        json={"name": "added-3", "tor_port": one["tor_port"], **body},
    )
    assert r.status_code == 409 and r.json()["error"]["field"] == "tor_port", r.text
    acme = make_tenant("acme")
    r = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": "n", "cidr": "10.3.0.0/24", "module": module_name, "tenant_id": acme.id},
    )
    assert r.status_code == 201, r.text
    r = api.client.post(
        "/api/v1/vms",
        headers=api.op,
        json={
            "name": "v",
            "flavor": "s1.small",
            "networks": ["n"],
            "host": "added-1",
            "tenant_id": acme.id,
        },
    )
    assert r.status_code == 201, r.text
    _, _, text = _tor_config(api)
    assert parse_nxos(text).trunks[one["tor_port"]][0] == "added-1"
    r = api.client.patch(
        f"/api/v1/hosts/{one['id']}", headers=api.op, json={"tor_port": "Ethernet1/40"}
    )
    assert r.status_code == 200 and r.json()["tor_port"] == "Ethernet1/40", r.text
    # The ToR's configuration follows the recabling: the host's trunk is on the new port.
    _, _, text = _tor_config(api)
    trunks = parse_nxos(text).trunks
    assert trunks["Ethernet1/40"][0] == "added-1" and trunks["Ethernet1/40"][1] != ()
    assert one["tor_port"] not in trunks or trunks[one["tor_port"]][0] != "added-1"
