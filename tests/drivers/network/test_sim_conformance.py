"""The ``sim`` driver passes the network-driver conformance suite."""

from __future__ import annotations

import dataclasses

import pytest

from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.sim import SimNetworkDriver
from tests.drivers.network.conformance import Document, NetworkDriverConformance


class SimHarness:
    points = ("vswitch", "ports", "qos")

    def __init__(self) -> None:
        self.driver = SimNetworkDriver()

    def documents(self, point: str) -> tuple[Document, Document]:
        return (
            (AppliedState("host", f"h-{point}", point, 1, f"{point}-a"), f"{point} config a"),
            (AppliedState("host", f"h-{point}", point, 2, f"{point}-b"), f"{point} config b"),
        )

    def snapshot(self, point: str) -> str:
        name = f"h-{point}"
        return (
            f"{self.driver.observe('host', name, point)} {self.driver.config('host', name, point)}"
        )

    def tamper(self, point: str) -> None:
        # What an edit at the simulated device's console does: its config no longer
        # matches what was applied.
        key = ("host", f"h-{point}", point)
        state, text = self.driver._devices[key]
        self.driver._devices[key] = (dataclasses.replace(state, digest="edited"), text + "!")

    def refused(self, point: str, previous: AppliedState) -> Document:
        """Each point is its own device here, so refusing one leaves the others alone."""
        self.driver.fail_on.add(previous.device_name)
        return dataclasses.replace(previous, generation=previous.generation + 1), "rejected"


class TestSimConformance(NetworkDriverConformance):
    @pytest.fixture
    def harness(self) -> SimHarness:
        return SimHarness()
