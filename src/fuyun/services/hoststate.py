"""A host's desired documents and its agent's reports, in the store.

The host agent reads the documents of one host (``ports``, ``vswitch``, ``qos``)
and reports back what it enforces. A report only moves the applied generation
forward, and only for the digest it applied, so a document that changed while
the agent worked stays visibly behind; drift is recorded as ``{"differences": [...]}``,
None when the device matched its desired state.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from fuyun.services.address_sets import device_text
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState
from fuyun.store.types import utcnow

HOST_DOCUMENTS = ("ports", "vswitch", "qos")


@dataclass(frozen=True)
class HostDocument:
    enforcement_point: str
    generation: int
    digest: str
    rendered: str


def host_documents(db: Database, host: str) -> list[HostDocument]:
    with db.read_session() as s:
        rows = s.execute(
            select(
                DeviceState.enforcement_point,
                DeviceState.desired_generation,
                DeviceState.digest,
                DeviceState.rendered,
                DeviceState.ir,
                DeviceState.flavor,
            ).where(
                DeviceState.device_type == "host",
                DeviceState.device_name == host,
                DeviceState.enforcement_point.in_(HOST_DOCUMENTS),
            )
        ).all()
        # A policy that refers to address sets is rendered now, with their members.
        return [
            HostDocument(ep, generation, digest, device_text(s, rendered, ir, flavor, digest))
            for ep, generation, digest, rendered, ir, flavor in rows
        ]


def report_host_document(
    db: Database,
    host: str,
    enforcement_point: str,
    generation: int,
    digest: str,
    drift: tuple[str, ...],
) -> None:
    """Record a report; drift is stored as ``{"differences": [...]}``, None when none."""
    now = utcnow()
    where = (
        DeviceState.device_type == "host",
        DeviceState.device_name == host,
        DeviceState.enforcement_point == enforcement_point,
    )
    with db.write_session() as s:
        s.execute(
            update(DeviceState)
            .where(
                *where,
                DeviceState.applied_generation < generation,
                DeviceState.digest == digest,
            )
            .values(
                applied_generation=generation, applied_at=now, updated_at=DeviceState.updated_at
            )
        )
        s.execute(
            update(DeviceState)
            .where(*where)
            .values(
                drift={"differences": list(drift)} if drift else None,
                reported_at=now,
                updated_at=DeviceState.updated_at,
            )
        )
