"""A JSON document that carries its text is stored as that text, on both databases."""

from __future__ import annotations

import copy

from sqlalchemy import select, text

from fuyun.store.engine import Database, json_text
from fuyun.store.models import DeviceState
from fuyun.store.types import EncodedJson


def test_a_document_with_its_text_is_stored_as_that_text(any_db: Database) -> None:
    doc = {"device": "tor1", "ports": [{"port": "p1", "r": 0}], "rl": [{"in": [], "out": []}]}
    made = '{"device":"tor1","ports":[{"port":"p1","r":0}],"rl":[{"in":[],"out":[]}]}'
    with any_db.write_session() as s:
        s.add(
            DeviceState(
                device_type="switch",
                device_name="tor1",
                enforcement_point="tor-acl",
                flavor="nxos",
                desired_generation=1,
                applied_generation=0,
                ir=EncodedJson(doc, made),
            )
        )
    with any_db.read_session() as s:
        assert s.scalars(select(DeviceState.ir)).one() == doc
        stored = s.execute(text("SELECT CAST(ir AS TEXT) FROM device_states")).scalar_one()
    if any_db.engine.dialect.name == "sqlite":  # PostgreSQL's jsonb keeps its own form
        assert stored == made


def test_a_copy_is_a_plain_document_encoded_afresh() -> None:
    doc = EncodedJson({"a": [1]}, '{"a":[1]}')
    changed = copy.deepcopy(doc)
    changed["a"].append(2)
    assert type(changed) is dict
    assert json_text(changed) == '{"a": [1, 2]}'
    assert json_text(doc) == '{"a":[1]}'
