"""One test per acceptance rule: ``tiny`` with exactly one defect, and the finding it gives."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from fuyun.domain.enums import FabricKind, SwitchPlatform, SwitchRole
from fuyun.fabric.check import Finding, Severity, check_fabric, has_errors
from fuyun.fabric.spec import FabricSpec, ModuleLinkSpec, ModuleSpec
from tests.fabric.conftest import with_entry, with_list


def only_error(spec: FabricSpec) -> Finding:
    errors = [f for f in check_fabric(spec) if f.severity is Severity.ERROR]
    assert len(errors) == 1, errors
    return errors[0]


def only_warning(spec: FabricSpec) -> Finding:
    findings = check_fabric(spec)
    assert not has_errors(findings), findings
    assert len(findings) == 1, findings
    assert findings[0].severity is Severity.WARNING
    return findings[0]


def test_tiny_is_clean(tiny: FabricSpec) -> None:
    assert check_fabric(tiny) == []


# --- hosts: cabled to exactly one ToR, of a standard model


def test_host_not_cabled(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "hosts", 1, tor=None))
    assert (f.place, f.field) == ("hosts[1] (a-h2)", "tor")
    assert "not cabled" in f.message


def test_host_on_unknown_switch(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "hosts", 2, tor="a-t9"))
    assert (f.place, f.field, f.message) == ("hosts[2] (a-h3)", "tor", "unknown switch a-t9")


def test_host_on_aggregation_switch(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "hosts", 0, tor="a-agg1"))
    assert (f.place, f.field) == ("hosts[0] (a-h1)", "tor")
    assert "aggregation switch, not a ToR" in f.message


def test_host_of_non_standard_model(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "hosts", 3, model="homebrew-1u"))
    assert (f.place, f.field) == ("hosts[3] (b-h1)", "model")
    assert "not a standard model" in f.message


# --- modules and their aggregation pair


@pytest.mark.parametrize("kind", [FabricKind.ROUTED_CLOS, FabricKind.SWITCHED_CLOS])
def test_module_without_aggregation_pair(tiny: FabricSpec, kind: FabricKind) -> None:
    tech = "trill" if kind is FabricKind.SWITCHED_CLOS else None
    lone = ModuleSpec(name="a-m2", site="a", fabric_kind=kind, l2_technology=tech)
    agg = tiny.switches[0].model_copy(update={"name": "a2-agg1", "module": "a-m2"})
    tor = tiny.switches[2].model_copy(
        update={"name": "a2-t1", "module": "a-m2", "uplinks": ["a2-agg1"]}
    )
    spec = with_list(tiny, "modules", [*tiny.modules, lone])
    spec = with_list(
        spec,
        "switches",
        [
            *tiny.switches,
            agg.model_copy(update={"mgmt_address": None}),
            tor.model_copy(update={"mgmt_address": None}),
        ],
    )
    errors = [f for f in check_fabric(spec) if f.severity is Severity.ERROR]
    assert [(f.place, f.field) for f in errors] == [("modules[2] (a-m2)", "switches")]
    assert "1 aggregation switch" in errors[0].message and kind in errors[0].message


def test_module_on_unknown_site(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "modules", 1, site="c"))
    assert (f.place, f.field, f.message) == ("modules[1] (b-m1)", "site", "unknown site c")


def test_module_without_tors_is_a_warning_besides_its_missing_pair(tiny: FabricSpec) -> None:
    empty = ModuleSpec(name="a-m2", site="a", fabric_kind=FabricKind.ROUTED_CLOS)
    findings = check_fabric(with_list(tiny, "modules", [*tiny.modules, empty]))
    assert [(f.severity, f.place, f.field) for f in findings] == [
        (Severity.ERROR, "modules[2] (a-m2)", "switches"),
        (Severity.WARNING, "modules[2] (a-m2)", "switches"),
    ]


# --- switches: module, capacities, uplinks, ports


def test_switch_in_unknown_module(tiny: FabricSpec) -> None:
    stray = tiny.switches[0].model_copy(
        update={"name": "x-agg1", "module": "x-m1", "mgmt_address": None}
    )
    f = only_error(with_list(tiny, "switches", [*tiny.switches, stray]))
    assert (f.place, f.field, f.message) == (
        "switches[7] (x-agg1)",
        "module",
        "unknown module x-m1",
    )


@pytest.mark.parametrize(
    "capacity", ["mac_capacity", "arp_capacity", "vlan_capacity", "acl_capacity"]
)
def test_switch_capacity_missing(tiny: FabricSpec, capacity: str) -> None:
    f = only_error(with_entry(tiny, "switches", 3, **{capacity: None}))
    assert (f.place, f.field) == ("switches[3] (a-t2)", capacity)


def test_tor_without_uplinks(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "switches", 2, uplinks=[]))
    assert (f.place, f.field) == ("switches[2] (a-t1)", "uplinks")


def test_tor_uplink_unknown(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "switches", 2, uplinks=["a-agg1", "a-agg3"]))
    assert (f.place, f.field, f.message) == (
        "switches[2] (a-t1)",
        "uplinks",
        "unknown switch a-agg3",
    )


def test_tor_uplink_to_a_tor(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "switches", 2, uplinks=["a-agg1", "a-t2"]))
    assert (f.place, f.field) == ("switches[2] (a-t1)", "uplinks")
    assert "a-t2 is a tor, not an aggregation switch" in f.message


def test_tor_uplink_to_another_modules_aggregation(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "switches", 6, uplinks=["b-agg1", "a-agg2"]))
    assert (f.place, f.field) == ("switches[6] (b-t1)", "uplinks")
    assert "a-agg2 is in module a-m1, not b-m1" in f.message


def test_tor_single_homed_is_a_warning(tiny: FabricSpec) -> None:
    f = only_warning(with_entry(tiny, "switches", 3, uplinks=["a-agg2"]))
    assert (f.place, f.field) == ("switches[3] (a-t2)", "uplinks")


def test_tor_ports_exceeded(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "switches", 2, port_count=1))
    assert (f.place, f.field, f.message) == (
        "switches[2] (a-t1)",
        "port_count",
        "1 ports but 2 hosts cabled",
    )


def test_aggregation_ports_exceeded(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "switches", 1, port_count=1))
    assert (f.place, f.field, f.message) == (
        "switches[1] (a-agg2)",
        "port_count",
        "1 ports but 2 ToRs cabled",
    )


def test_platform_that_cannot_run_the_technology_is_a_warning(tiny: FabricSpec) -> None:
    f = only_warning(with_entry(tiny, "switches", 2, platform=SwitchPlatform.COMWARE))
    assert (f.place, f.field) == ("switches[2] (a-t1)", "platform")
    assert "vpc needs nxos" in f.message


# --- names and addresses


@pytest.mark.parametrize(
    "list_name",
    ["server_models", "flavors", "sites", "interconnects", "modules", "switches", "hosts"],
)
def test_duplicate_name_in_a_list(tiny: FabricSpec, list_name: str) -> None:
    entries = list(getattr(tiny, list_name))
    first = entries[0]
    # Only the name may clash: drop the copy's address and aggregate, unique by rule too.
    for unique in ("mgmt_address", "aggregate"):
        if hasattr(first, unique):
            first = first.model_copy(update={unique: None})
    f = only_error(with_list(tiny, list_name, [*entries, first]))
    assert (f.place, f.field) == (f"{list_name}[{len(entries)}] ({first.name})", "name")
    assert f.message == f"duplicate name: also {list_name}[0]"


def test_host_named_like_a_switch(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "hosts", 3, name="b-t1"))
    assert (f.place, f.field) == ("hosts[3] (b-t1)", "name")
    assert "switches[6]" in f.message


def test_duplicate_mgmt_address_across_switches_and_hosts(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "hosts", 2, mgmt_address="192.0.2.4"))
    assert (f.place, f.field) == ("hosts[2] (a-h3)", "mgmt_address")
    assert "switches[3]" in f.message


def test_overlapping_site_aggregates(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "sites", 0, aggregate=IPv4Network("10.0.0.0/8")))
    assert (f.place, f.field) == ("sites[1] (b)", "aggregate")
    assert "overlaps sites[0] (a)" in f.message


# --- interconnects


def test_interconnect_to_unknown_site(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "interconnects", 0, site_b="z"))
    assert (f.place, f.field, f.message) == ("interconnects[0] (a-b)", "site_b", "unknown site z")


def test_interconnect_joins_distinct_sites(tiny: FabricSpec) -> None:
    f = only_error(with_entry(tiny, "interconnects", 0, site_b="a"))
    assert (f.place, f.field) == ("interconnects[0] (a-b)", "site_b")
    assert "distinct" in f.message


# --- the whole report


def test_findings_come_in_file_order_and_all_at_once(tiny: FabricSpec) -> None:
    spec = with_entry(tiny, "hosts", 3, tor=None)
    spec = with_entry(spec, "modules", 0, site="nowhere")
    spec = with_entry(spec, "switches", 6, role=SwitchRole.AGGREGATION)
    places = [f.place for f in check_fabric(spec)]
    assert places == sorted(
        places, key=lambda p: ["modules", "switches", "hosts"].index(p.split("[")[0])
    )
    assert {"modules[0] (a-m1)", "hosts[3] (b-h1)"} <= set(places)


def test_module_link_refers_to_known_modules_of_one_site(tiny: FabricSpec) -> None:
    unknown = ModuleLinkSpec(name="l1", module_a="a-m1", module_b="a-m9")
    f = only_error(with_list(tiny, "module_links", [unknown]))
    assert (f.place, f.field) == ("module_links[0] (l1)", "module_b")
    assert f.message == "unknown module a-m9"
    across = ModuleLinkSpec(name="l2", module_a="a-m1", module_b="b-m1", l2_extension="direct")
    f = only_error(with_list(tiny, "module_links", [across]))
    assert f.field == "module_b" and "sites are joined by interconnects" in f.message
    itself = ModuleLinkSpec(name="l3", module_a="a-m1", module_b="a-m1")
    f = only_error(with_list(tiny, "module_links", [itself]))
    assert f.message == "a module link joins two distinct modules"
