"""Loading fabrics into the store and exporting them back, on a real migrated SQLite."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fuyun.domain.errors import Conflict, InvalidInput
from fuyun.fabric.catalog import STD_2010_1G
from fuyun.fabric.generator import PRESETS, generate
from fuyun.fabric.loader import canonical, export_from_store, load_into_store
from fuyun.fabric.spec import FabricSpec, ModuleLinkSpec
from fuyun.fabric.yamlio import dump_fabric, load_fabric
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade
from fuyun.store.models import (
    Flavor,
    Host,
    Interconnect,
    Module,
    ServerModel,
    Site,
    Switch,
    SwitchUplink,
)
from tests.fabric.conftest import with_entry, with_list

TABLES = (ServerModel, Flavor, Site, Interconnect, Module, Switch, SwitchUplink, Host)


def counts(db: Database) -> dict[str, int]:
    with db.read_session() as session:
        return {
            t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0
            for t in TABLES
        }


def load(db: Database, spec: FabricSpec) -> None:
    with db.write_session() as session:
        load_into_store(session, spec)


def export(db: Database, name: str = "fabric") -> FabricSpec:
    with db.read_session() as session:
        return export_from_store(session, name=name)


def test_load_small_counts_match(db: Database, small: FabricSpec) -> None:
    with db.write_session() as session:
        summary = load_into_store(session, small)
    assert counts(db) == {
        "server_models": len(small.server_models),
        "flavors": len(small.flavors),
        "sites": len(small.sites),
        "interconnects": len(small.interconnects),
        "modules": len(small.modules),
        "switches": len(small.switches),
        "switch_uplinks": sum(len(s.uplinks) for s in small.switches),
        "hosts": len(small.hosts),
    }
    assert (summary.hosts, summary.switches, summary.reused_catalog) == (
        len(small.hosts),
        len(small.switches),
        0,
    )


def test_host_capacity_is_copied_from_its_model(db: Database, tiny: FabricSpec) -> None:
    load(db, with_entry(tiny, "hosts", 0, max_vms=10))
    with db.read_session() as session:
        host = session.scalars(select(Host).where(Host.name == "a-h1")).one()
        tor = session.get(Switch, host.tor_id)
        module = session.get(Module, host.module_id)
    assert (host.vcpus, host.ram_mb, host.disk_gb) == (12, 48 * 1024, 600)
    assert host.nic_mbps == STD_2010_1G.nic_count * STD_2010_1G.nic_speed_gbps * 1000 == 2000
    assert (host.max_vms, host.vm_count, host.used_vcpus) == (10, 0, 0)
    assert tor is not None and tor.name == "a-t1"
    assert module is not None and module.name == "a-m1" and host.site_id == module.site_id


def test_switch_site_and_uplinks(db: Database, tiny: FabricSpec) -> None:
    load(db, tiny)
    with db.read_session() as session:
        tor = session.scalars(select(Switch).where(Switch.name == "b-t1")).one()
        site = session.scalars(select(Site).where(Site.name == "b")).one()
        ups = session.scalars(
            select(Switch.name)
            .join(SwitchUplink, SwitchUplink.uplink_id == Switch.id)
            .where(SwitchUplink.switch_id == tor.id)
        ).all()
    assert tor.site_id == site.id
    assert sorted(ups) == ["b-agg1", "b-agg2"]
    assert (tor.uplink_mbps, tor.used_mac) == (40_000, 0)


def test_export_round_trip(db: Database, small: FabricSpec, tmp_path: Path) -> None:
    load(db, small)
    exported = export(db, name=small.name)
    assert exported == canonical(small)
    # store -> spec -> store -> spec: nothing drifts.
    second = Database(f"sqlite:///{tmp_path / 'second.db'}")
    try:
        upgrade(second.engine)
        load(second, exported)
        assert export(second, name=small.name) == exported
    finally:
        second.dispose()


def test_canonical_only_sorts(small: FabricSpec) -> None:
    spec = canonical(small)
    assert [s.aggregate for s in spec.sites] == [
        s.aggregate for s in sorted(small.sites, key=lambda s: s.name)
    ]
    assert [h.name for h in spec.hosts] == sorted(h.name for h in small.hosts)


def test_site_aggregates_root_the_address_plan(db: Database, small: FabricSpec) -> None:
    from sqlalchemy import select

    from fuyun.store.models import Prefix

    load(db, small)
    with db.read_session() as s:
        roots = set(s.scalars(select(Prefix.cidr).where(Prefix.kind == "aggregate")))
    assert roots == {str(site.aggregate) for site in small.sites if site.aggregate}


def test_refusing_a_bad_spec_leaves_the_store_empty(db: Database, tiny: FabricSpec) -> None:
    bad = with_entry(tiny, "hosts", 3, tor="nowhere")
    with pytest.raises(InvalidInput, match=r"hosts\[3\] \(b-h1\)\.tor: unknown switch nowhere"):
        load(db, bad)
    assert set(counts(db).values()) == {0}


def test_refusing_names_that_exist(db: Database, small: FabricSpec) -> None:
    load(db, small)
    before = counts(db)
    with pytest.raises(Conflict, match=f"already in the store: sites {small.sites[0].name}"):
        load(db, small)
    assert counts(db) == before


def test_refusing_a_management_address_in_use(db: Database, tiny: FabricSpec) -> None:
    load(db, with_list(tiny, "hosts", tiny.hosts[:1]))
    # A second fabric of other names whose one host reuses a-h1's address.
    other = tiny.model_copy(
        update={
            "sites": [tiny.sites[1].model_copy(update={"aggregate": None})],
            "interconnects": [],
            "modules": [tiny.modules[1]],
            "switches": [s.model_copy(update={"mgmt_address": None}) for s in tiny.switches[4:]],
            "hosts": [tiny.hosts[3].model_copy(update={"mgmt_address": "192.0.2.11"})],
        }
    )
    with pytest.raises(Conflict, match=r"management address 192\.0\.2\.11 \(b-h1\)"):
        load(db, other)


def test_catalog_is_reused_when_identical_and_refused_when_not(
    db: Database, tiny: FabricSpec
) -> None:
    catalog = FabricSpec(server_models=tiny.server_models, flavors=tiny.flavors)
    load(db, catalog)
    with db.write_session() as session:
        summary = load_into_store(session, catalog)
    assert summary.reused_catalog == len(tiny.server_models) + len(tiny.flavors)
    changed = with_entry(catalog, "server_models", 0, cores=16)
    with pytest.raises(Conflict, match="server model std-2010-1g exists in the store"):
        load(db, changed)
    assert counts(db)["server_models"] == len(tiny.server_models)


def test_module_links_round_trip_through_the_store_and_yaml(db: Database) -> None:
    spec = generate(replace(PRESETS["small"], modules_per_site=2))
    link = ModuleLinkSpec(
        name="sz1-dci", module_a="sz1-m01", module_b="sz1-m02", l2_extension="direct"
    )
    spec = with_list(spec, "module_links", [link])
    load(db, spec)
    exported = export(db, name=spec.name)
    assert exported.module_links == [link]
    assert exported == canonical(spec)
    assert load_fabric(dump_fabric(exported)) == exported
