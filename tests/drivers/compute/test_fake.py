"""The ``fake`` driver passes the conformance suite it defines the shape of."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuyun.drivers.compute.fake import FakeComputeDriver
from tests.drivers.compute.conformance import ComputeDriverConformance, Harness


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(FakeComputeDriver(), ("fake-a", "fake-b"))
    yield h
    h.cleanup()


class TestFakeConformance(ComputeDriverConformance):
    pass
