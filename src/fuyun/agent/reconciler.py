"""The per-host reconciler: desired documents vs what the switch runs, on level.

Each pass takes the host's documents as they are now — never an event's
payload — and for each asks the driver what it enforces (``observe``) and, when
the driver can tell, what differs on the device (``drift``). A document is
(re)applied when the generation or digest differs or anything drifted; since
drivers write only differences, a pass over a converged host changes nothing.
Ports come first (policy and QoS refer to them). A host with no ``vswitch``
document (its module enforces policy elsewhere) gets the empty policy, which
switches normally. A failing document is logged and retried next pass; the
others still converge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from fuyun.agent.netservices import NetworkServicesAgent
from fuyun.agent.source import DesiredStateSource, HostDocument
from fuyun.domain.errors import FuyunError
from fuyun.drivers.network.base import AppliedState, NetworkDriver

log = logging.getLogger("fuyun.agent")
ORDER = {"ports": 0, "vswitch": 1, "qos": 2}
PASS_THROUGH = HostDocument("vswitch", 0, "", "")


@dataclass
class HostPass:
    host: str
    applied: list[str] = field(default_factory=list)
    drift: dict[str, tuple[str, ...]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class HostAgent:
    """Converges hosts; a full drift audit of a converged document runs at most every
    ``audit_interval_s`` (comparing generations is cheap, reading a switch back is not)."""

    def __init__(
        self, source: DesiredStateSource, driver: NetworkDriver, audit_interval_s: float = 10.0
    ) -> None:
        self.source, self.driver = source, driver
        self.audit_interval_s = audit_interval_s
        self._reported: dict[tuple[str, str], tuple[int, str, tuple[str, ...]]] = {}
        self._audited: dict[tuple[str, str], float] = {}
        self._failing: dict[tuple[str, str], str] = {}

    def reconcile(self, host: str, *, audit: bool | None = None) -> HostPass:
        """One level pass over ``host``; ``audit`` forces (or skips) the drift audit."""
        result = HostPass(host)
        docs = {d.enforcement_point: d for d in self.source.desired(host)}
        docs.setdefault("vswitch", PASS_THROUGH)
        for doc in sorted(docs.values(), key=lambda d: ORDER.get(d.enforcement_point, 9)):
            try:
                self._one(host, doc, result, audit)
            except FuyunError as exc:
                key = (host, doc.enforcement_point)
                if self._failing.get(key) != exc.message:  # say it once, not every pass
                    log.warning("%s/%s not converged: %s", *key, exc.message)
                    self._failing[key] = exc.message
                result.errors[doc.enforcement_point] = exc.message
            else:
                self._failing.pop((host, doc.enforcement_point), None)
        return result

    def _one(self, host: str, doc: HostDocument, result: HostPass, audit: bool | None) -> None:
        state = AppliedState("host", host, doc.enforcement_point, doc.generation, doc.digest)
        # The cheap reading when the driver has one; the audit below reads the device back.
        recorded = getattr(self.driver, "recorded", None)
        look = recorded if callable(recorded) else self.driver.observe
        seen = look("host", host, doc.enforcement_point)
        key = (host, doc.enforcement_point)
        now = time.monotonic()
        if audit is None:
            audit = now - self._audited.get(key, -1e9) >= self.audit_interval_s
        drift: tuple[str, ...] = ()
        drift_of = getattr(self.driver, "drift", None)  # drivers that can name drift
        if audit and seen == state and callable(drift_of):
            drift = tuple(drift_of(state, doc.rendered))
            self._audited[key] = now
        if seen != state or drift:
            self.driver.apply(state, doc.rendered)
            result.applied.append(doc.enforcement_point)
        if drift:
            result.drift[doc.enforcement_point] = drift
            log.info("%s/%s drifted, repaired: %s", host, doc.enforcement_point, drift[:3])
        report = (doc.generation, doc.digest, drift)
        if doc is not PASS_THROUGH and self._reported.get(key) != report:
            self.source.report(host, doc.enforcement_point, doc.generation, doc.digest, drift)
            self._reported[key] = report

    def reconcile_all(self, hosts: Iterable[str], *, audit: bool | None = None) -> list[HostPass]:
        return [self.reconcile(h, audit=audit) for h in hosts]


class AgentLoop:
    """Reconcile ``hosts`` (and, on a network node, its network ``services``) every
    ``interval_s`` seconds in a daemon thread until stopped."""

    def __init__(
        self,
        agent: HostAgent,
        hosts: list[str],
        interval_s: float = 0.5,
        services: NetworkServicesAgent | None = None,
    ) -> None:
        self.agent, self.hosts, self.interval_s = agent, hosts, interval_s
        self.services = services
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="fuyun-agent", daemon=True)
        # The network node on its own thread: a reservation (one SIGHUP) never waits
        # behind the plugging of new VMs on the hosts.
        self._services_thread = threading.Thread(
            target=self.run_services, name="fuyun-agent-services", daemon=True
        )
        self.passes = 0

    def start(self) -> None:
        self._thread.start()
        if self.services is not None:
            self._services_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._services_thread.is_alive():
            self._services_thread.join(timeout=10)

    def run_services(self) -> None:
        assert self.services is not None
        while not self._stop.is_set():
            try:
                self.services.reconcile()
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("network services pass failed")
            self._stop.wait(self.interval_s)

    def run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            try:
                # Changed documents first, on every host; then the drift audit of one
                # host (when due), so an audit never delays a change by more than one.
                self.agent.reconcile_all(self.hosts, audit=False)
                if self.hosts:
                    self.agent.reconcile(self.hosts[turn % len(self.hosts)])
                    turn += 1
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("agent pass failed")
            self.passes += 1
            self._stop.wait(self.interval_s)
