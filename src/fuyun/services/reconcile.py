"""Converging devices to their desired state, on level: desired vs applied, never per event.

:func:`reconcile_once` finds every device whose applied generation is behind and
applies its current desired state through the network driver; a device that
fails stays behind and is retried on the next pass. ``fuyun serve`` runs it in a
background loop for the in-process ``sim`` driver; host agents run the same logic
against real devices.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fuyun.domain.errors import FuyunError
from fuyun.drivers.network import AppliedState, NetworkDriver
from fuyun.services.address_sets import device_text
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState
from fuyun.store.types import utcnow

log = logging.getLogger("fuyun.reconcile")


@dataclass(frozen=True)
class Pass:
    applied: int
    failed: int


def reconcile_once(db: Database, driver: NetworkDriver, *, limit: int = 500) -> Pass:
    with db.read_session() as s:
        lagging = list(
            s.execute(
                select(
                    DeviceState.id,
                    DeviceState.device_type,
                    DeviceState.device_name,
                    DeviceState.enforcement_point,
                    DeviceState.desired_generation,
                    DeviceState.digest,
                    DeviceState.rendered,
                    DeviceState.ir,
                    DeviceState.flavor,
                )
                .where(DeviceState.applied_generation < DeviceState.desired_generation)
                .limit(limit)
            )
        )
        # Texts read in the same snapshot as the generations: address-set members at
        # least as new as each generation (a later change bumps it again).
        texts = {
            row[0]: device_text(s, row.rendered, row.ir, row.flavor, row.digest) for row in lagging
        }
    applied = failed = 0
    for row_id, dtype, name, ep, generation, digest, _rendered, _ir, _flavor in lagging:
        try:
            text = texts[row_id]
            driver.apply(AppliedState(dtype, name, ep, generation, digest), text)
        except FuyunError as exc:
            log.warning("device %s/%s not converged: %s", dtype, name, exc.message)
            failed += 1
            continue
        with db.write_session() as s:
            # Only move forward: a newer desired generation may have landed meanwhile.
            s.execute(
                update(DeviceState)
                .where(
                    DeviceState.id == row_id,
                    DeviceState.applied_generation < generation,
                    DeviceState.digest == digest,
                )
                .values(applied_generation=generation, applied_at=utcnow())
            )
        applied += 1
    return Pass(applied, failed)


def converge(s: Session, driver: NetworkDriver, ids: list[uuid.UUID]) -> Pass:
    """Apply these devices now, inside the caller's transaction (a workflow step that
    must not go on before they run their desired generation). Same rules as a pass."""
    applied = failed = 0
    rows = s.scalars(
        select(DeviceState).where(
            DeviceState.id.in_(ids),
            DeviceState.applied_generation < DeviceState.desired_generation,
        )
    )
    # The port map first: the other documents of a host (QoS above all) name its ports.
    for row in sorted(rows, key=lambda r: r.enforcement_point != "ports"):
        state = AppliedState(
            row.device_type,
            row.device_name,
            row.enforcement_point,
            row.desired_generation,
            row.digest,
        )
        try:
            driver.apply(state, device_text(s, row.rendered, row.ir, row.flavor, row.digest))
        except FuyunError as exc:
            log.warning(
                "device %s/%s not converged: %s", row.device_type, row.device_name, exc.message
            )
            failed += 1
            continue
        row.applied_generation, row.applied_at = row.desired_generation, utcnow()
        applied += 1
    s.flush()
    return Pass(applied, failed)


class ReconcileLoop:
    """A daemon thread that reconciles every ``interval_s`` seconds until stopped."""

    def __init__(self, db: Database, driver: NetworkDriver, interval_s: float = 1.0):
        self.db, self.driver, self.interval_s = db, driver, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fuyun-reconcile", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                reconcile_once(self.db, self.driver)
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("reconcile pass failed")
            self._stop.wait(self.interval_s)
