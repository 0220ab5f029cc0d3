"""Fabric files: exact round trips, and errors that name the line, the path and the problem."""

from __future__ import annotations

from ipaddress import IPv6Network
from pathlib import Path

import pytest
import yaml

from fuyun.domain.errors import InvalidInput
from fuyun.fabric.check import check_fabric
from fuyun.fabric.fastyaml import parse_dumped
from fuyun.fabric.generator import GeneratorParams, generate
from fuyun.fabric.spec import FabricSpec
from fuyun.fabric.yamlio import FabricFileError, dump_fabric, load_fabric
from tests.fabric.conftest import with_entry

BLOCK_FILE = """\
# a hand-written fabric in block style
version: 1
name: hand
server_models:
  - name: std-2010-1g
    cores: 12
    ram_gb: 48
    disk_gb: 600
sites:
  - name: a
    city: Shenzhen
modules:
  - name: a-m1
    site: a
    fabric_kind: routed-clos
switches:
  - name: a-agg1
    module: a-m1
    role: aggregation
    mac_capacity: 131072
    arp_capacity: 65536
    vlan_capacity: 4000
    acl_capacity: 8000
hosts:
  - name: a-h1
    tor: a-t1
    model: std-2010-1g
    max_vms: 8
"""


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def rejected(text: str) -> FabricFileError:
    with pytest.raises(FabricFileError) as caught:
        load_fabric(text)
    return caught.value


@pytest.mark.parametrize("preset", ["small", "default"])
def test_round_trip(preset: str) -> None:
    spec = generate(preset, seed=5)
    text = dump_fabric(spec)
    assert load_fabric(text) == spec
    assert dump_fabric(load_fabric(text)) == text


def test_dump_is_one_line_per_entry_and_plain(small: FabricSpec) -> None:
    lines = dump_fabric(small).splitlines()
    for host in small.hosts:
        assert (
            sum(line.startswith(f"- {{name: {host.name}, tor: {host.tor}, ") for line in lines) == 1
        )
    assert "- {name: sz1-m01, site: sz1, fabric_kind: " in "\n".join(lines)  # enums plain


def test_the_fast_reader_agrees_with_pyyaml(small: FabricSpec) -> None:
    text = dump_fabric(small)
    assert parse_dumped(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "awkward",
    [
        "Xi'an",
        "a: b # c, [d] {e}",
        "yes",
        "null",
        "~",
        "1.5",
        "0x1F",
        "012",
        "2010-01-01",
        " leading",
        "trailing ",
        "two\nlines",
        "深圳",
        "",
        "- dash",
        "'quoted'",
        '"double"',
        "tab\there",
    ],
)
def test_round_trip_of_awkward_strings(tiny: FabricSpec, awkward: str) -> None:
    spec = with_entry(tiny, "sites", 0, description=awkward, city=awkward)
    text = dump_fabric(spec)
    assert load_fabric(text) == spec
    assert parse_dumped(text) in (None, yaml.safe_load(text))


def test_round_trip_ipv6_aggregate_and_nulls(tiny: FabricSpec) -> None:
    spec = with_entry(tiny, "sites", 1, aggregate=IPv6Network("2001:db8::/32"))
    spec = with_entry(spec, "hosts", 0, mgmt_address=None)
    assert load_fabric(dump_fabric(spec)) == spec


def test_load_from_a_path_or_a_path_string(tmp_path: Path, small: FabricSpec) -> None:
    path = tmp_path / "fabric.yaml"
    path.write_text(dump_fabric(small))
    assert load_fabric(path) == small
    assert load_fabric(str(path)) == small


def test_missing_file(tmp_path: Path) -> None:
    error = rejected(str(tmp_path / "nowhere.yaml"))
    assert "cannot read" in error.message


# --- rejected files: the exact line, path and problem


def test_bad_enum(small: FabricSpec) -> None:
    text = dump_fabric(small).replace("fabric_kind: routed-clos", "fabric_kind: routed")
    index = next(i for i, m in enumerate(small.modules) if m.fabric_kind == "routed-clos")
    error = rejected(text)
    line = line_of(text, "fabric_kind: routed,")
    assert str(error.errors[0]) == (
        f"line {line}: modules[{index}].fabric_kind: "
        "Input should be 'routed-clos' or 'switched-clos'"
    )
    assert error.message.startswith(f"line {line}: modules[{index}].fabric_kind:")
    assert error.field == f"modules[{index}].fabric_kind"
    assert isinstance(error, InvalidInput)


def test_density_above_limit_as_in_the_docs() -> None:
    spec = generate(
        GeneratorParams(
            name="one", sites=1, modules_per_site=1, tors_per_module=(4, 4), hosts_per_tor=(4, 4)
        )
    )
    host = spec.hosts[12]
    lines = dump_fabric(spec).splitlines()
    n = line_of("\n".join(lines), f"name: {host.name},")
    lines[n - 1] = lines[n - 1].replace(f"max_vms: {host.max_vms}", "max_vms: 65")
    error = rejected("\n".join(lines))
    assert error.message == f"line {n}: hosts[12].max_vms: Input should be less than or equal to 64"


def test_negative_capacity_in_block_style() -> None:
    text = BLOCK_FILE.replace("mac_capacity: 131072", "mac_capacity: -5")
    error = rejected(text)
    line = line_of(text, "mac_capacity: -5")
    assert [str(e) for e in error.errors] == [
        f"line {line}: switches[0].mac_capacity: Input should be greater than or equal to 1"
    ]


def test_block_style_file_loads() -> None:
    spec = load_fabric(BLOCK_FILE)
    assert spec.switches[0].port_count == 48  # defaults fill in
    assert spec.hosts[0].tor == "a-t1"


def test_unknown_key(small: FabricSpec) -> None:
    host = small.hosts[3]
    text = dump_fabric(small).replace(f"name: {host.name}, ", f"name: {host.name}, colour: red, ")
    error = rejected(text)
    line = line_of(text, "colour: red")
    assert str(error.errors[0]) == f"line {line}: hosts[3].colour: Extra inputs are not permitted"


def test_wrong_type() -> None:
    text = BLOCK_FILE.replace("max_vms: 8", "max_vms: lots")
    error = rejected(text)
    assert str(error.errors[0]).startswith(
        f"line {line_of(text, 'max_vms: lots')}: hosts[0].max_vms: Input should be a valid integer"
    )


def test_missing_field_is_named_at_its_entry() -> None:
    text = BLOCK_FILE.replace("    model: std-2010-1g\n", "")
    error = rejected(text)
    assert (
        str(error.errors[0])
        == f"line {line_of(text, '- name: a-h1')}: hosts[0].model: Field required"
    )


def test_entry_rule_names_the_entry() -> None:
    text = BLOCK_FILE.replace("fabric_kind: routed-clos", "fabric_kind: switched-clos")
    error = rejected(text)
    assert error.errors[0].line == line_of(text, "- name: a-m1")
    assert error.errors[0].path == "modules[0]"
    assert "needs l2_technology" in error.errors[0].message


def test_yaml_syntax_error_gives_the_line() -> None:
    text = BLOCK_FILE.replace("city: Shenzhen", "city: Shen: zhen")
    error = rejected(text)
    assert error.message.startswith(f"line {line_of(text, 'Shen: zhen')}: YAML syntax error:")


def test_unclosed_bracket_gives_both_lines() -> None:
    text = BLOCK_FILE.replace("city: Shenzhen", "city: [Shenzhen")
    error = rejected(text)
    assert f"started on line {line_of(text, '[Shenzhen')}" in error.message


def test_duplicate_key() -> None:
    text = BLOCK_FILE.replace("    max_vms: 8\n", "    max_vms: 8\n    max_vms: 9\n")
    error = rejected(text)
    assert str(error.errors[0]) == (
        f"line {line_of(text, 'max_vms: 9')}: hosts[0].max_vms: key given twice in one mapping"
    )


def test_every_error_is_reported(small: FabricSpec) -> None:
    text = dump_fabric(small).replace("max_vms: ", "max_vms: -")
    error = rejected(text)
    assert len(error.errors) == len(small.hosts)
    assert [e.path for e in error.errors] == [
        f"hosts[{i}].max_vms" for i in range(len(small.hosts))
    ]
    assert len({e.line for e in error.errors}) == len(small.hosts)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "the file is empty"), ("- 1\n", "a mapping of lists"), ("version: 2\n", "version 2")],
)
def test_not_a_fabric(text: str, problem: str) -> None:
    assert problem in rejected(text).message


def test_the_documented_example_loads_and_passes_its_check() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "fabric-format.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = load_fabric(example)
    assert check_fabric(spec) == []
    assert spec.hosts[1].hypervisor == "xen"


def test_a_union_complains_once() -> None:
    text = BLOCK_FILE.replace("city: Shenzhen", "aggregate: 10.0.0.0/33")
    error = rejected(text)
    assert len(error.errors) == 1
    assert error.errors[0].path == "sites[0].aggregate"
    assert "IPv4" in error.errors[0].message and "IPv6" in error.errors[0].message
