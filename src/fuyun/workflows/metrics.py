"""Prometheus series about workflows: how they end, how long they take, what fails.

Recorded by the engine wherever a workflow runs (an API process in inline mode, a
``fuyun worker`` in queue mode), so both serve them: the API on ``/metrics``, a worker
on its own ``--metrics-port``. A rising ``rolled_back`` rate or step failures of one
kind are what an operator alerts on; takeovers count workers that died mid-way.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Histogram

from fuyun.store.types import utcnow

FINISHED = Counter(
    "fuyun_workflows_finished",
    "Workflows that reached an end, by kind and end state",
    ["kind", "state"],
)
DURATION = Histogram(
    "fuyun_workflow_duration_seconds",
    "From a workflow's creation to its end, by kind and end state",
    ["kind", "state"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
STEP_FAILURES = Counter(
    "fuyun_workflow_step_failures", "Workflow steps that failed, by kind and step", ["kind", "step"]
)
TAKEOVERS = Counter(
    "fuyun_workflow_takeovers", "Workflows claimed from an owner whose lease had expired"
)


def finished(kind: str, state: str, created_at: datetime) -> None:
    FINISHED.labels(kind, state).inc()
    DURATION.labels(kind, state).observe(max(0.0, (utcnow() - created_at).total_seconds()))
