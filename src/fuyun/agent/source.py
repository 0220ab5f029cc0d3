"""Where an agent learns a host's desired state, and where it reports back.

:class:`DesiredStateSource` is all the agent needs: the documents of one host,
and a place to say which generation it enforces and what drift it found. The
store-backed source reads the database directly (one process per machine, or a
lab); a source over the API's watch endpoint plugs in the same way.
"""

from __future__ import annotations

from typing import Protocol

from fuyun.services.hoststate import HostDocument, host_documents, report_host_document
from fuyun.store.engine import Database

__all__ = ["DesiredStateSource", "HostDocument", "StoreSource"]


class DesiredStateSource(Protocol):
    def desired(self, host: str) -> list[HostDocument]:
        """Every document the host must enforce now (``ports``, ``vswitch``, ``qos``)."""

    def report(
        self,
        host: str,
        enforcement_point: str,
        generation: int,
        digest: str,
        drift: tuple[str, ...],
    ) -> None:
        """The host enforces ``generation``; ``drift`` is what differed before this pass."""


class StoreSource:
    def __init__(self, db: Database) -> None:
        self.db = db

    def desired(self, host: str) -> list[HostDocument]:
        return host_documents(self.db, host)

    def report(
        self,
        host: str,
        enforcement_point: str,
        generation: int,
        digest: str,
        drift: tuple[str, ...],
    ) -> None:
        report_host_document(self.db, host, enforcement_point, generation, digest, drift[:200])
