"""Garbage-collector settings for long-running processes (API server, workflow worker).

A request that recompiles policy allocates hundreds of thousands of short-lived
container objects (ORM rows, IR tuples, JSON dicts). With CPython's default
thresholds (700, 10, 10) that triggers dozens of young collections per request and,
every so often, a full (generation-2) pass that walks *every* live object of the
process — the ~200k objects of FastAPI, pydantic and SQLAlchemy loaded at start-up
included — and pauses that one request for hundreds of milliseconds.

:func:`settle_after_startup` is called once start-up loading is done: it collects,
then freezes what survived (frozen objects are never traversed again), and raises
the thresholds so young collections run per tens of thousands of allocations, not
per hundreds, and full passes stay rare. Cyclic garbage lives a little longer;
memory stays bounded because the collector still runs.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

# Generation 0 collects after this many net allocations of container objects; a
# policy change of a few hundred ports allocates about this many.
GEN0_THRESHOLD = 20_000
# Young collections of generation 0 before one of generation 1.
GEN1_THRESHOLD = 20
# Generation-1 collections before a full pass is considered (CPython also waits until
# the survivors pending grow by a quarter of the long-lived objects).
GEN2_THRESHOLD = 20


@dataclass(frozen=True)
class Settled:
    """What :func:`settle_after_startup` did: objects frozen and the thresholds set."""

    frozen: int
    thresholds: tuple[int, int, int]


def settle_after_startup(
    thresholds: tuple[int, int, int] = (GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD),
) -> Settled:
    """Collect, freeze the start-up objects, raise the thresholds. Idempotent.

    Call it after the process has loaded everything it keeps (app, routes, store
    metadata, drivers) and before it serves: objects allocated later stay visible to
    the collector, so nothing a request leaks in a cycle is kept forever.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    return Settled(gc.get_freeze_count(), gc.get_threshold())
