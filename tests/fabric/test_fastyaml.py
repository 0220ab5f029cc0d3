"""The fast reader gives PyYAML's answer or none: never a different one."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fuyun.fabric.fastyaml import is_plain_string, parse_dumped

# Scalars chosen to trip a naive reader: YAML 1.1 booleans, nulls, octal, hex,
# sexagesimal and float ints, timestamps, indicators, spaces, quotes and brackets.
TRICKY = [
    "a",
    "sz1-m01-t01",
    "172.16.0.1",
    "10.0.0.0/11",
    "Xi'an",
    "Hong Kong",
    "s1.small",
    "null",
    "Null",
    "~",
    "yes",
    "No",
    "on",
    "true",
    "1",
    "0",
    "-1",
    "+1",
    "01",
    "0x1F",
    "1_000",
    "1:30",
    "1.5",
    ".inf",
    ".5",
    "1e3",
    "2010-01-01",
    "=",
    "<<",
    "",
    " a",
    "a ",
    "a  b",
    "a: b",
    "a,b",
    "a #c",
    "#c",
    "[x]",
    "x]",
    "{x}",
    "'q'",
    '"q"',
    "-",
    "- a",
    "?",
    "a\tb",
    "*a",
    "&a",
    "!a",
    "%a",
    "@a",
    "`a",
    "|",
    ">",
]
COMMON = ["a", "sz1-m01-t01", "172.16.0.1", "10.0.0.0/11", "Hong Kong", "8", "null"]
KEYS = ["name", "k2", "tor", "Name", "a b", "l2_x", ""]

# Mostly well-formed, so that the reader often answers and the answer is compared.
scalars = st.one_of(st.sampled_from(COMMON), st.sampled_from(COMMON), st.sampled_from(TRICKY))
keys = st.one_of(st.sampled_from(["name", "tor", "l2_x"]), st.sampled_from(KEYS))
values = st.one_of(scalars, st.lists(scalars, max_size=3).map(lambda v: "[" + ", ".join(v) + "]"))
entries = st.lists(st.tuples(keys, values), max_size=4).map(
    lambda items: "- {" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
)
top_lines = st.one_of(
    st.tuples(st.sampled_from(["version", "name", "hosts", "sites", "Hosts"]), values).map(
        lambda kv: f"{kv[0]}: {kv[1]}"
    ),
    st.sampled_from(["hosts:", "sites:", "switches: []", "# comment", ""]),
)
documents = st.lists(st.one_of(entries, entries, top_lines), max_size=8).map(
    lambda lines: "\n".join(["hosts:", *lines])
)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_same_answer_as_pyyaml_or_none(text: str) -> None:
    fast = parse_dumped(text)
    if fast is None:
        return
    assert fast == yaml.safe_load(text)


@given(scalars)
def test_plain_strings_read_back_as_themselves(value: str) -> None:
    if is_plain_string(value):
        assert yaml.safe_load(f"- {{k: {value}, l: [{value}]}}") == [{"k": value, "l": [value]}]


def test_typical_lines_are_read() -> None:
    text = "version: 1\nhosts:\n- {name: h1, tor: t1, max_vms: 8, uplinks: [a, b], x: null}\n"
    assert parse_dumped(text) == yaml.safe_load(text)
    assert parse_dumped("hosts:\n") == {"hosts": None}
    assert parse_dumped("name: 'quoted'\n") is None
