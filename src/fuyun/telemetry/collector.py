"""The sFlow collector: UDP datagrams in, attributed 10-second buckets and alerts out.

Life cycle: :meth:`Collector.handle` runs per datagram on the event loop (decode,
attribute, add up — no I/O); :meth:`Collector.flush` runs every ``flush_s``
seconds, takes the buckets that have closed, writes them to the flow store,
judges them for alerts, and now and then expires old buckets. A malformed
datagram is counted and dropped; an exception while flushing is logged and the
rows are kept for the next flush, so a database hiccup loses nothing.

``fuyun collector`` runs :func:`serve` in the foreground; ``fuyun serve`` runs
it in a :class:`CollectorThread` beside the API when ``FUYUN_COLLECTOR_PORT`` is
set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fuyun.store.engine import Database
from fuyun.telemetry import alerts, metrics, pcap
from fuyun.telemetry.bindings import PortMapCache
from fuyun.telemetry.flowstore import FlowStore
from fuyun.telemetry.guarantees import guarantees_for
from fuyun.telemetry.quality import AlertDraft, bucket_alerts
from fuyun.telemetry.rollup import (
    BASE_RESOLUTION_S,
    InterfaceRow,
    Rollup,
    Tally,
    TrafficRow,
    to_time,
)
from fuyun.telemetry.sflow import MalformedDatagram, decode

log = logging.getLogger("fuyun.telemetry.collector")
EXPIRE_EVERY_S = 300.0


@dataclass
class FlushResult:
    traffic_rows: int = 0
    interface_rows: int = 0
    alerts: list[AlertDraft] = field(default_factory=list)


class Collector:
    def __init__(
        self,
        db: Database,
        store: FlowStore,
        *,
        portmap: PortMapCache | None = None,
        webhook_url: str = "",
        link_threshold: float = 0.9,
    ) -> None:
        self.db, self.store = db, store
        self.portmap = portmap or PortMapCache(db)
        self.webhook_url, self.link_threshold = webhook_url, link_threshold
        self.rollup = Rollup()
        self._pending: tuple[list[TrafficRow], list[InterfaceRow]] = ([], [])
        self._expired_at = 0.0

    @property
    def tally(self) -> Tally:
        return self.rollup.tally

    def handle(self, data: bytes, now: float | None = None, *, refresh: bool = True) -> int:
        """Decode and add one datagram; return its flow samples attributed (0 if dropped).

        With ``refresh`` the port map is re-checked here when due (queries the store).
        The network listener passes False: :func:`serve` refreshes the map on a worker
        thread, so no query ever runs on the event loop that receives datagrams.
        """
        now = time.time() if now is None else now
        tally = self.rollup.tally
        tally.datagrams += 1
        metrics.DATAGRAMS.inc()
        try:
            dgram = decode(data)
        except MalformedDatagram as exc:
            tally.malformed += 1
            metrics.MALFORMED.inc()
            log.debug("dropped malformed datagram: %s", exc)
            return 0
        index = self.portmap.current() if refresh else self.portmap.index
        add_flow, hits = self.rollup.add_flow, 0
        for f in dgram.flows:
            hits += add_flow(f, index, now)
        for c in dgram.counters:
            self.rollup.add_counters(c, now)
        nf, nc = len(dgram.flows), len(dgram.counters)
        tally.flow_samples += nf
        tally.counter_samples += nc
        metrics.SAMPLES.labels("flow").inc(nf)
        metrics.SAMPLES.labels("counter").inc(nc)
        metrics.UNATTRIBUTED.inc(nf - hits)
        return hits

    def drain(self, *, final: bool = False, now: float | None = None) -> None:
        """Move closed buckets (all with ``final``) to the pending rows. Event-loop side."""
        now = time.time() if now is None else now
        traffic, interfaces = self.rollup.drain(self.portmap.index, before_s=None if final else now)
        self._pending[0].extend(traffic)
        self._pending[1].extend(interfaces)

    def write_pending(self, now: float | None = None) -> FlushResult:
        """Store pending rows, raise alerts, expire old buckets. May block: run off-loop."""
        now = time.time() if now is None else now
        traffic, interfaces = self._pending
        if not traffic and not interfaces:
            return FlushResult()
        self._pending = ([], [])
        try:
            self.store.write(traffic, interfaces)
        except Exception:
            log.exception("flow store write failed; keeping %d rows", len(traffic))
            self._pending[0].extend(traffic)
            self._pending[1].extend(interfaces)
            return FlushResult()
        names = self.portmap.index.tenants
        per_tenant: dict[tuple[str, str], int] = defaultdict(int)
        for r in traffic:
            name = names.get(r.tenant_id, str(r.tenant_id))
            per_tenant[(name, "tx")] += r.tx_bytes
            per_tenant[(name, "rx")] += r.rx_bytes
        for (name, direction), n in per_tenant.items():
            metrics.TRAFFIC_BYTES.labels(name, direction).inc(n)
        new: list[AlertDraft] = []
        try:
            drafts = bucket_alerts(
                traffic,
                interfaces,
                guarantees_for(self.db, {r.vm_id for r in traffic}),
                resolution_s=BASE_RESOLUTION_S,
                link_threshold=self.link_threshold,
            )
            new = alerts.record(self.db, drafts)
            alerts.notify(self.webhook_url, new)
        except Exception:  # the rows are stored; only these alerts are lost
            log.exception("judging %d rows for alerts failed", len(traffic))
        if now - self._expired_at >= EXPIRE_EVERY_S:
            self._expired_at = now
            try:
                self.store.expire(to_time(int(now)))
            except Exception:
                log.exception("expiring old buckets failed; retried next time")
        return FlushResult(len(traffic), len(interfaces), new)

    def flush(self, *, final: bool = False, now: float | None = None) -> FlushResult:
        self.drain(final=final, now=now)
        return self.write_pending(now)

    def replay(self, path: Path | str) -> FlushResult:
        """Feed a pcap of sFlow datagrams as if they arrived now, then flush everything."""
        for payload in pcap.udp_payloads(path, port=None):
            self.handle(payload)
        return self.flush(final=True)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.collector.handle(data, refresh=False)
        except Exception:  # never let one datagram stop the collector
            log.exception("datagram from %s not handled", addr[0])


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # ride out flush pauses
    sock.bind((host, port))
    return sock


async def _refresh_portmap(collector: Collector, stop: asyncio.Event) -> None:
    """Keep the port map current off the event loop, every ``refresh_s``."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=collector.portmap.refresh_s)
        try:
            await loop.run_in_executor(None, collector.portmap.current)
        except Exception:  # a store hiccup: keep attributing with the last map
            log.exception("port map refresh failed")


async def serve(
    collector: Collector,
    host: str,
    port: int,
    *,
    flush_s: float = 5.0,
    stop: asyncio.Event | None = None,
    ready: threading.Event | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Receive on HOST:PORT until ``stop`` is set; flush every ``flush_s`` seconds."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    await loop.run_in_executor(None, collector.portmap.refresh)
    refresher = asyncio.create_task(_refresh_portmap(collector, stop))
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(collector), sock=sock or _socket(host, port)
    )
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=flush_s)
            collector.drain(final=stop.is_set())
            try:
                await loop.run_in_executor(None, collector.write_pending)
            except Exception:  # never let a flush stop the listener
                log.exception("flush failed")
    finally:
        refresher.cancel()
        transport.close()
        collector.drain(final=True)
        collector.write_pending()


class CollectorThread:
    """The collector on its own event loop in a daemon thread, for ``fuyun serve``."""

    def __init__(self, collector: Collector, host: str, port: int, flush_s: float = 5.0):
        self.collector = collector
        self._sock = _socket(host, port)  # bind now, so a taken port fails at start
        self.address = self._sock.getsockname()
        self._flush_s = flush_s
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fuyun-collector", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(
            serve(
                self.collector,
                "",
                0,
                flush_s=self._flush_s,
                stop=self._stop,
                ready=self._ready,
                sock=self._sock,
            )
        )

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
