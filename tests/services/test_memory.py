"""The long-running processes' start-up gc step: freeze what start-up loaded, raise thresholds."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from fuyun.services.memory import GEN0_THRESHOLD, settle_after_startup


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_freezes_startup_objects_and_raises_thresholds(restored_gc: None) -> None:
    gc.unfreeze()
    loaded = [[i] for i in range(10_000)]  # start-up state the process keeps
    settled = settle_after_startup()
    assert settled.frozen >= len(loaded)
    # Frozen objects freed by their refcount leave the count (it is not fixed at
    # ``settled.frozen``), but what start-up keeps stays frozen.
    assert gc.get_freeze_count() >= len(loaded)
    assert settled.thresholds == gc.get_threshold()
    assert gc.get_threshold()[0] == GEN0_THRESHOLD > 700
    # Frozen objects are out of the collector's sight: a full pass does not traverse them.
    assert not any(obj is loaded for obj in gc.get_objects(generation=2))


def test_garbage_made_after_settling_is_still_collected(restored_gc: None) -> None:
    settle_after_startup()

    class Node:
        def __init__(self) -> None:
            self.me = self

    node = Node()  # a cycle
    gone = weakref.ref(node)
    del node  # unreachable now: only the collector can free it
    gc.collect()
    assert gone() is None
