"""``fuyun worker``: claim queued and orphaned workflows from the store and carry them out.

Any number of workers (on any number of machines) share one PostgreSQL database and
nothing else. Each of a worker's threads claims one workflow at a time with
``SELECT … FOR UPDATE SKIP LOCKED`` — a pending one, or one whose lease expired
because the worker that held it died — and runs it under a lease its engine's
heartbeat renews. A claimed orphan resumes from its last recorded step (or rolls
back, as its kind says), so a SIGKILLed worker costs a lease period, never a workflow.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from fuyun.workflows.engine import Engine

log = logging.getLogger("fuyun.worker")


@dataclass
class WorkerStats:
    finished: int = 0
    abandoned: int = 0
    crashed: int = 0


class Worker:
    """``concurrency`` threads, each claiming and driving one workflow at a time."""

    def __init__(self, engine: Engine, *, concurrency: int = 4, poll_s: float = 0.2):
        self.engine = engine
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        for i in range(self.concurrency):
            t = threading.Thread(target=self._loop, name=f"fuyun-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 30) -> None:
        """Stop claiming; let running workflows finish their current step and end."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=timeout_s)

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    def work_once(self) -> bool:
        """Claim and drive at most one workflow; False when there was none."""
        claimed = self.engine.claim_orphans(limit=1)
        if not claimed:
            return False
        [wf_id] = claimed
        try:
            outcome = self.engine.drive(wf_id)
        except Exception:
            log.exception("workflow %s crashed its worker thread; it was rolled back", wf_id)
            with self._lock:
                self.stats.crashed += 1
            return True
        with self._lock:
            if outcome is not None and outcome.state == "abandoned":
                self.stats.abandoned += 1
            else:
                self.stats.finished += 1
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.work_once()
            except Exception:  # the store is away: wait and claim again
                log.exception("claiming a workflow failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll_s)
