"""Agent reports move a document's applied generation forward only, for the digest applied."""

from __future__ import annotations

from sqlalchemy import select

from fuyun.services.hoststate import host_documents, report_host_document
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState


def _row(db: Database) -> DeviceState:
    with db.read_session() as s:
        return s.scalars(select(DeviceState)).one()


def test_reports_only_move_forward_and_only_for_the_current_digest(db: Database) -> None:
    with db.write_session() as s:
        s.add(
            DeviceState(
                device_type="host",
                device_name="h1",
                enforcement_point="ports",
                flavor="ovs",
                rendered="{}",
                digest="d3",
                desired_generation=3,
                applied_generation=1,
            )
        )
    [doc] = host_documents(db, "h1")
    assert (doc.enforcement_point, doc.generation, doc.digest) == ("ports", 3, "d3")
    assert host_documents(db, "h2") == []

    report_host_document(db, "h1", "ports", 2, "d2", ())  # an older document: not applied
    assert _row(db).applied_generation == 1
    report_host_document(db, "h1", "ports", 3, "d3", ("flow -table=0 ...",))
    row = _row(db)
    assert row.applied_generation == 3 and row.drift == {"differences": ["flow -table=0 ..."]}
    assert row.reported_at is not None
    report_host_document(db, "h1", "ports", 2, "d3", ())  # never backwards
    row = _row(db)
    assert row.applied_generation == 3 and row.drift is None
