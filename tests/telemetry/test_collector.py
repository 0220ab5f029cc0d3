"""Collector end to end on a real store: attribution, accounting error, dedup, migration.

Accounting bound. Each frame of length L_i is sampled independently with
probability p = 1/N and a sample adds N*L_i, so the estimate of a total is
unbiased with variance sum_i (1-p)/p * L_i^2 <= N * sum_i L_i^2 (sFlow's
published rule, "error <= 196 * sqrt(1/samples) % at 95 %", is the same formula
for equal frames). The test allows 4 standard deviations (a chance of 6e-5 per
check for a fair sampler); its stream is seeded, so it is deterministic.
"""

from __future__ import annotations

import http.server
import json
import math
import random
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, update

from fuyun.store.models import Host, TrafficBucket, Vm
from fuyun.telemetry import metrics
from fuyun.telemetry.bindings import PortMapCache
from fuyun.telemetry.collector import Collector, CollectorThread
from fuyun.telemetry.dbstore import DatabaseFlowStore
from tests.telemetry import synth
from tests.telemetry.conftest import World
from tests.telemetry.test_decode import fixture_datagrams

T0 = 1_789_999_200  # a whole hour, so every bucket of the stream falls in one 1 h bucket
EXTERNAL_MAC, EXTERNAL_IP = "02:ee:00:00:00:01", "203.0.113.9"


def _window() -> dict[str, str]:
    since = datetime.fromtimestamp(T0, UTC)
    until = datetime.fromtimestamp(T0 + 3600, UTC)
    return {"since": since.isoformat(), "until": until.isoformat()}


def _collector(world: World, **kw: object) -> Collector:
    db = world.api.db
    return Collector(db, DatabaseFlowStore(db), portmap=PortMapCache(db, refresh_s=0), **kw)  # type: ignore[arg-type]


def _sample(
    src: tuple[str, str], dst: tuple[str, str], length: int, rate: int, **kw: object
) -> bytes:
    frame = synth.ether(src[0], dst[0], src[1], dst[1])
    return synth.flow_sample(
        [synth.raw_header_record(frame, frame_length=length - 4)], rate=rate, **kw
    )  # type: ignore[arg-type]


def test_per_tenant_bytes_within_the_sampling_bound(world: World) -> None:
    p = world.ports
    ends = {n: (b.mac, b.ips[0]) for n, b in p.items()}
    ends["ext"] = (EXTERNAL_MAC, EXTERNAL_IP)
    flows = [("avm-1", "avm-2", 40_000), ("bvm-1", "avm-1", 60_000), ("bvm-2", "ext", 30_000)]
    rate = 64
    rng = random.Random(8)
    true_tx: dict[str, int] = defaultdict(int)
    true_rx: dict[str, int] = defaultdict(int)
    sq_tx: dict[str, int] = defaultdict(int)
    sq_rx: dict[str, int] = defaultdict(int)
    samples: list[bytes] = []
    for src, dst, frames in flows:
        for _ in range(frames):
            length = rng.randint(64, 1518)
            true_tx[src] += length
            true_rx[dst] += length
            sq_tx[src] += length * length
            sq_rx[dst] += length * length
            if rng.random() < 1 / rate:
                samples.append(_sample(ends[src], ends[dst], length, rate))
    c = _collector(world)
    for i in range(0, len(samples), 8):
        c.handle(synth.datagram(samples[i : i + 8], seq=i), now=T0 + 5 + i * 0.01)
    c.flush(final=True, now=T0 + 3000)
    assert c.tally.malformed == 0 and c.tally.flow_samples == len(samples)

    r = world.api.client.get(
        "/api/v1/traffic",
        headers=world.api.op,
        params={"bucket": "1h", "top": 10, **_window()},
    )
    assert r.status_code == 200, r.text
    by_vm = {e["name"]: e for e in r.json()["top"]}
    for vm in ("avm-1", "avm-2", "bvm-1", "bvm-2"):
        for direction, true, sq in (("tx", true_tx, sq_tx), ("rx", true_rx, sq_rx)):
            got = by_vm[vm][f"{direction}_bytes"]
            bound = 4 * math.sqrt(rate * sq[vm])
            assert abs(got - true[vm]) <= bound, (vm, direction, got, true[vm], bound)
    r = world.api.client.get(
        "/api/v1/traffic",
        headers=world.api.op,
        params={"bucket": "1h", "group_by": "tenant", **_window()},
    )
    tenants = {e["name"]: e for e in r.json()["top"]}
    a_true = true_tx["avm-1"] + true_tx["avm-2"]
    a_bound = 4 * math.sqrt(rate * (sq_tx["avm-1"] + sq_tx["avm-2"]))
    assert abs(tenants["sfa-studio"]["tx_bytes"] - a_true) <= a_bound
    b_true = true_tx["bvm-1"] + true_tx["bvm-2"]
    b_bound = 4 * math.sqrt(rate * (sq_tx["bvm-1"] + sq_tx["bvm-2"]))
    assert abs(tenants["sfb-flooder"]["tx_bytes"] - b_true) <= b_bound
    # The external end matched no port: its samples count as unattributed nowhere.
    assert c.tally.unattributed == 0  # every sample had at least one known end

    # Partners see their own VMs only, and 404 for the other's.
    mine = world.api.client.get(
        "/api/v1/traffic", headers=world.a.headers, params={"bucket": "1h", **_window()}
    ).json()
    assert {e["tenant"] for e in mine["top"]} == {"sfa-studio"}
    assert len(mine["series"]) == 1
    other = world.api.client.get(
        "/api/v1/traffic", headers=world.a.headers, params={"tenant": "sfb-flooder"}
    )
    assert other.status_code == 404 and other.json()["error"]["field"] == "tenant"
    other_vm = world.api.client.get(
        "/api/v1/traffic", headers=world.a.headers, params={"vm": "bvm-1"}
    )
    assert other_vm.status_code == 404


def test_known_exporters_count_each_frame_once(world: World) -> None:
    a1, b1 = world.ports["avm-1"], world.ports["bvm-1"]
    agent_a, agent_b = world.host_agents[a1.host or ""], world.host_agents[b1.host or ""]
    sample = _sample((a1.mac, a1.ips[0]), (b1.mac, b1.ips[0]), 1000, 10)
    c = _collector(world)
    # The frame is sampled leaving a1's host and again entering b1's host.
    c.handle(synth.datagram([sample], agent=agent_a), now=T0 + 1)
    c.handle(synth.datagram([sample], agent=agent_b), now=T0 + 2)
    c.flush(final=True, now=T0 + 20)
    with world.api.db.read_session() as s:
        rows = {
            r.vm_id: r
            for r in s.scalars(select(TrafficBucket).where(TrafficBucket.resolution_s == 10))
        }
    assert (rows[a1.vm_id].tx_bytes, rows[a1.vm_id].rx_bytes) == (10_000, 0)
    assert (rows[b1.vm_id].tx_bytes, rows[b1.vm_id].rx_bytes) == (0, 10_000)


def test_attribution_follows_a_migration(world: World) -> None:
    a1 = world.ports["avm-1"]
    db = world.api.db
    with db.read_session() as s:
        target = s.scalars(select(Host).where(Host.name != a1.host).order_by(Host.name)).first()
        assert target is not None and target.mgmt_address
        new_host, new_agent = target.name, target.mgmt_address
    c = _collector(world)
    peer = (EXTERNAL_MAC, EXTERNAL_IP)
    sample = _sample((a1.mac, a1.ips[0]), peer, 500, 1)
    c.handle(synth.datagram([sample], agent=new_agent), now=T0 + 1)
    assert c.tally.unattributed == 1  # not on that host (yet)
    with db.write_session() as s:
        s.execute(update(Vm).where(Vm.id == a1.vm_id).values(host_id=target.id))
    c.handle(synth.datagram([sample], agent=new_agent), now=T0 + 2)
    assert c.tally.attributed == 1
    assert next(b for b in c.portmap.index.bindings if b.vm_id == a1.vm_id).host == new_host


def test_malformed_datagrams_are_counted_and_dropped(world: World) -> None:
    c = _collector(world)
    before = metrics.MALFORMED._value.get()
    good = fixture_datagrams()[1]
    for junk in (b"", b"\0" * 3, good[:-1], b"\x00\x00\x00\x05" + b"\xff" * 60):
        assert c.handle(junk, now=T0) == 0
    c.handle(good, now=T0)
    assert c.tally.malformed == 4 and c.tally.datagrams == 5
    assert metrics.MALFORMED._value.get() - before == 4


@pytest.fixture
def webhook() -> Iterator[list[dict[str, object]]]:
    received: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.append({"url": f"http://127.0.0.1:{server.server_address[1]}/hook"})
    yield received
    server.shutdown()
    server.server_close()


def test_missed_guarantee_and_hot_link_raise_alerts(
    world: World, webhook: list[dict[str, object]]
) -> None:
    url = str(webhook.pop(0)["url"])
    a1, b1 = world.ports["avm-1"], world.ports["bvm-1"]
    c = _collector(world, webhook_url=url, link_threshold=0.9)
    ext = (EXTERNAL_MAC, EXTERNAL_IP)
    # a1 (guaranteed its flavor's bandwidth) carries 10 frames x 1000 B x 1000 = 8 Mbit/s
    # over the 10 s bucket while its port drops 200,000 frames (160 Mbit/s of 1000 B frames):
    # demand was 168 Mbit/s, above its 100 Mbit/s guarantee.
    flows = [_sample((a1.mac, a1.ips[0]), ext, 1000, 1000, in_if=7) for _ in range(10)]
    c.handle(synth.datagram(flows), now=T0 + 1)
    port = synth.IfCounters(if_index=7, speed=10**9)
    c.handle(synth.datagram([synth.counter_sample(port)]), now=T0 + 1)
    port.in_discards, port.in_octets = 200_000, 10**7
    c.handle(synth.datagram([synth.counter_sample(port, seq=2)]), now=T0 + 9)
    # An uplink at 1.25 Gbit/s over 8 s on a 1 Gbit/s interface: over 90 %.
    uplink = synth.IfCounters(if_index=1, speed=10**9)
    c.handle(synth.datagram([synth.counter_sample(uplink)], agent="192.0.2.7"), now=T0 + 1)
    uplink.out_octets = 10**9 + 25 * 10**7
    c.handle(synth.datagram([synth.counter_sample(uplink, seq=2)], agent="192.0.2.7"), now=T0 + 9)
    # b1 sends little and drops nothing: below its guarantee, but no demand, no alert.
    c.handle(synth.datagram([_sample((b1.mac, b1.ips[0]), ext, 100, 1)]), now=T0 + 2)
    result = c.flush(final=True, now=T0 + 30)
    kinds = sorted((a.kind, a.vm_id) for a in result.alerts)
    assert kinds == sorted([("guarantee_missed", a1.vm_id), ("link_over_threshold", None)])
    assert sorted(str(h["kind"]) for h in webhook) == ["guarantee_missed", "link_over_threshold"]
    # A second flush of the same bucket raises nothing new.
    assert c.flush(final=True, now=T0 + 31).alerts == []

    op = world.api.client.get("/api/v1/traffic/alerts", headers=world.api.op).json()["items"]
    assert {a["kind"] for a in op} == {"guarantee_missed", "link_over_threshold"}
    mine = world.api.client.get("/api/v1/traffic/alerts", headers=world.a.headers).json()
    assert [a["kind"] for a in mine["items"]] == ["guarantee_missed"]
    theirs = world.api.client.get("/api/v1/traffic/alerts", headers=world.b.headers).json()
    assert theirs["items"] == []

    q = world.api.client.get(
        "/api/v1/traffic/quality",
        headers=world.a.headers,
        params={"bucket": "10s", "vm": "avm-1", **_window()},
    )
    assert q.status_code == 200, q.text
    (entry,) = q.json()["items"]
    assert entry["guarantee_missed"] == 1 and entry["discards"] == 200_000
    assert entry["guaranteed_bps"] > entry["peak_bps"] == pytest.approx(8e6)
    assert entry["guarantee_source"] == "vm-bandwidth"


def test_udp_listener_receives_real_datagrams(world: World) -> None:
    c = _collector(world)
    listener = CollectorThread(c, "127.0.0.1", 0, flush_s=0.2)
    listener.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for d in fixture_datagrams():
                tx.sendto(d, listener.address)
            tx.sendto(b"not sflow", listener.address)
        deadline = 200
        while c.tally.datagrams < len(fixture_datagrams()) + 1 and deadline:
            threading.Event().wait(0.05)
            deadline -= 1
    finally:
        listener.stop()
    assert c.tally.datagrams == len(fixture_datagrams()) + 1
    assert c.tally.malformed == 1
    assert c.tally.flow_samples == sum(len(decode_all) for decode_all in _flows())


def test_udp_listener_follows_a_migration_without_querying_on_its_event_loop(
    world: World,
) -> None:
    """The listener's loop only decodes; the port map is refreshed on a worker thread."""
    a1 = world.ports["avm-1"]
    db = world.api.db
    with db.read_session() as s:
        target = s.scalars(select(Host).where(Host.name != a1.host).order_by(Host.name)).first()
        assert target is not None and target.mgmt_address
    c = Collector(db, DatabaseFlowStore(db), portmap=PortMapCache(db, refresh_s=0.05))
    querying_threads: set[str] = set()

    def record(*_: object) -> None:
        querying_threads.add(threading.current_thread().name)

    event.listen(db.engine, "before_cursor_execute", record)
    listener = CollectorThread(c, "127.0.0.1", 0, flush_s=30)
    listener.start()
    try:
        with db.write_session() as s:
            s.execute(update(Vm).where(Vm.id == a1.vm_id).values(host_id=target.id))
        sample = _sample((a1.mac, a1.ips[0]), (EXTERNAL_MAC, EXTERNAL_IP), 500, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for _ in range(400):  # until the refreshed map attributes it on the new host
                tx.sendto(synth.datagram([sample], agent=target.mgmt_address), listener.address)
                threading.Event().wait(0.01)
                if c.tally.attributed:
                    break
    finally:
        listener.stop()
        event.remove(db.engine, "before_cursor_execute", record)
    assert c.tally.attributed >= 1
    assert querying_threads and "fuyun-collector" not in querying_threads


def _flows() -> list[list[object]]:
    from fuyun.telemetry.sflow import decode

    return [list(decode(d).flows) for d in fixture_datagrams()]


def test_old_buckets_expire_by_resolution(world: World) -> None:
    a1 = world.ports["avm-1"]
    store = DatabaseFlowStore(world.api.db, retention={10: 60, 60: 3600})
    c = Collector(world.api.db, store, portmap=PortMapCache(world.api.db, refresh_s=0))
    c.handle(
        synth.datagram([_sample((a1.mac, a1.ips[0]), (EXTERNAL_MAC, EXTERNAL_IP), 100, 1)]), now=T0
    )
    c.flush(final=True, now=T0 + 1)
    removed = store.expire(datetime.fromtimestamp(T0 + 600, UTC))
    assert removed == 1  # the 10 s row; the 1 min row is kept an hour
    with world.api.db.read_session() as s:
        left = s.scalars(select(TrafficBucket.resolution_s)).all()
    assert left == [60]


def test_a_dead_webhook_is_counted_and_the_collector_goes_on(world: World) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    c = _collector(world, webhook_url=dead, link_threshold=0.5)
    uplink = synth.IfCounters(if_index=3, speed=10**6)
    c.handle(synth.datagram([synth.counter_sample(uplink)]), now=T0 + 1)
    uplink.out_octets = 10**6
    c.handle(synth.datagram([synth.counter_sample(uplink, seq=2)]), now=T0 + 5)
    before = metrics.WEBHOOK_FAILURES._value.get()
    result = c.flush(final=True, now=T0 + 20)
    assert [a.kind for a in result.alerts] == ["link_over_threshold"]
    assert metrics.WEBHOOK_FAILURES._value.get() - before == 1


class _FlakyStore(DatabaseFlowStore):
    """Fails its first write, as a database restart would."""

    failures = 1

    def write(self, traffic, interfaces):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise OSError("database restarting")
        super().write(traffic, interfaces)


def test_rows_survive_a_failed_write_until_the_next_flush(world: World) -> None:
    a1 = world.ports["avm-1"]
    db = world.api.db
    c = Collector(db, _FlakyStore(db), portmap=PortMapCache(db, refresh_s=0))
    c.handle(
        synth.datagram([_sample((a1.mac, a1.ips[0]), (EXTERNAL_MAC, EXTERNAL_IP), 100, 2)]), now=T0
    )
    assert c.flush(final=True, now=T0 + 20).traffic_rows == 0
    assert c.flush(final=True, now=T0 + 25).traffic_rows == 1
    with db.read_session() as s:
        (row,) = s.scalars(select(TrafficBucket).where(TrafficBucket.resolution_s == 10)).all()
    assert row.tx_bytes == 200


def test_prometheus_counters_are_in_the_default_registry(world: World) -> None:
    from prometheus_client import REGISTRY, generate_latest

    a1 = world.ports["avm-1"]
    c = _collector(world)
    c.handle(
        synth.datagram([_sample((a1.mac, a1.ips[0]), (EXTERNAL_MAC, EXTERNAL_IP), 100, 3)]), now=T0
    )
    c.flush(final=True, now=T0 + 20)
    text = generate_latest(REGISTRY).decode()
    for name in (
        "fuyun_sflow_datagrams_total",
        "fuyun_sflow_malformed_datagrams_total",
        'fuyun_sflow_samples_total{kind="flow"}',
        "fuyun_sflow_unattributed_samples_total",
        'fuyun_traffic_bytes_total{direction="tx",tenant="sfa-studio"}',
        "fuyun_alert_webhook_failures_total",
    ):
        assert name in text, name
