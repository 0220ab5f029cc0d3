"""What every network driver must do, as one suite each driver's tests run.

A driver's test module subclasses :class:`NetworkDriverConformance` and provides
a ``harness`` fixture (a fresh :class:`Harness` per test). The suite then checks,
for every enforcement point the harness lists:

- round trip: after ``apply(state)`` the device reports exactly ``state``;
- idempotence: applying the state in force again changes nothing on the device
  (the harness's ``snapshot`` — the device's own dump — is byte-identical);
- drift: after the harness changes the device by hand, ``observe`` no longer
  reports the applied state, and applying it again restores the same dump;
- failure: a document the device refuses raises ``DriverError`` and leaves the
  previous state in force, reported and dumped as before.
"""

from __future__ import annotations

import re
from typing import Protocol

import pytest

from fuyun.domain.errors import DriverError
from fuyun.drivers.network.base import AppliedState, NetworkDriver

Document = tuple[AppliedState, str]


class Harness(Protocol):
    driver: NetworkDriver
    points: tuple[str, ...]

    def documents(self, point: str) -> tuple[Document, Document]:
        """Two successive generations of one device's desired state."""
        ...

    def snapshot(self, point: str) -> str:
        """The device's configuration as the device itself prints it."""
        ...

    def tamper(self, point: str) -> None:
        """Change the device by hand, as an operator at its console would."""
        ...

    def refused(self, point: str, previous: AppliedState) -> Document:
        """A next generation the device must refuse (arranging the refusal if needed)."""
        ...


def _observe(driver: NetworkDriver, state: AppliedState) -> AppliedState | None:
    return driver.observe(state.device_type, state.device_name, state.enforcement_point)


class NetworkDriverConformance:
    """Subclass as ``Test<Driver>Conformance`` and provide the ``harness`` fixture."""

    def test_apply_then_observe_round_trip(self, harness: Harness) -> None:
        for point in harness.points:
            first, second = harness.documents(point)
            harness.driver.apply(*first)
            assert _observe(harness.driver, first[0]) == first[0], point
            harness.driver.apply(*second)
            assert _observe(harness.driver, second[0]) == second[0], point

    def test_reapply_of_an_unchanged_state_changes_nothing(self, harness: Harness) -> None:
        for point in harness.points:
            first, _ = harness.documents(point)
            harness.driver.apply(*first)
            before = harness.snapshot(point)
            harness.driver.apply(*first)
            assert harness.snapshot(point) == before, point
            assert _observe(harness.driver, first[0]) == first[0], point

    def test_drift_is_reported_and_repaired(self, harness: Harness) -> None:
        for point in harness.points:
            first, _ = harness.documents(point)
            harness.driver.apply(*first)
            clean = harness.snapshot(point)
            harness.tamper(point)
            assert harness.snapshot(point) != clean, f"{point}: the tamper changed nothing"
            assert _observe(harness.driver, first[0]) != first[0], point
            harness.driver.apply(*first)
            assert _observe(harness.driver, first[0]) == first[0], point
            assert _normal(harness.snapshot(point)) == _normal(clean), point

    def test_a_refused_document_leaves_the_previous_state(self, harness: Harness) -> None:
        for point in harness.points:
            first, _ = harness.documents(point)
            harness.driver.apply(*first)
            before = harness.snapshot(point)
            bad = harness.refused(point, first[0])
            with pytest.raises(DriverError):
                harness.driver.apply(*bad)
            assert _observe(harness.driver, first[0]) == first[0], point
            assert harness.snapshot(point) == before, point


def _normal(snapshot: str) -> str:
    """A snapshot without kernel handles, which a repair may renumber."""
    return re.sub(r"(# handle \d+|fh [0-9a-f:]+|order \d+|index \d+ ref)", "", snapshot)
