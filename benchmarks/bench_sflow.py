"""sFlow collector throughput: decoded + attributed samples per second per core, vs sfacctd.

Claim backed here: fuyun's pure-Python collector decodes and attributes at least 20,000
sFlow samples per second on one core (ElastiFlow sizes 3,250-3,750 records/s per core;
GoFlow's maintainer quotes 10k-40k), and we say how that compares with pmacct's
``sfacctd`` (C) on the same datagrams in the same run.

Workload: the real Open vSwitch datagrams of ``tests/telemetry/fixtures/ovs-sflow.pcap``
(flow samples with raw headers of ICMP, ICMPv6, TCP, UDP and 802.1Q frames, and counter
samples), repeated ``--repeat`` times. The port map holds the fixture's three ports plus
``--ports`` others, so every lookup is a dictionary hit in a realistically sized index.

Measured, each on one core (CPU time of this process, ``time.process_time``):

1. decode only (``fuyun.telemetry.sflow.decode``);
2. decode + attribute + 10 s roll-up (``Rollup.add_flow`` / ``add_counters``);
3. the collector's full per-datagram path (``Collector.handle``: the above plus the
   Prometheus counters and the port-map cache check), without the periodic flush, which
   writes one row per VM and bucket and does not grow with the sample rate.

Peer: ``sfacctd`` replaying the same datagrams from a pcap (``pcap_savefile``) with the
``print`` plugin aggregating by the same header fields; its CPU time is the user+system time
of it and its plugin process (``RUSAGE_CHILDREN``), so its figure is per core as well. It
replays the fixture ``--peer-repeat`` times, and the CPU of a one-pass replay is taken off
so its start-up (a 64 MB cache, the plugin fork) does not count against it.

Run (from the checkout)::

    .venv/bin/python benchmarks/bench_sflow.py [--repeat 400] [--ports 10000]

Needs Debian's ``pmacct`` for the peer row (skipped with a note otherwise). Benchmarks
report numbers and ratios; nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fuyun.store.engine import Database  # noqa: E402
from fuyun.store.migrate import upgrade  # noqa: E402
from fuyun.telemetry import pcap  # noqa: E402
from fuyun.telemetry.collector import Collector  # noqa: E402
from fuyun.telemetry.dbstore import DatabaseFlowStore  # noqa: E402
from fuyun.telemetry.portmap import Binding, PortIndex  # noqa: E402
from fuyun.telemetry.rollup import Rollup  # noqa: E402
from fuyun.telemetry.sflow import decode  # noqa: E402

FIXTURE = ROOT / "tests" / "telemetry" / "fixtures" / "ovs-sflow.pcap"


def port_index(extra: int) -> PortIndex:
    tenant, net = uuid.uuid4(), uuid.uuid4()
    bindings = [
        Binding(
            uuid.uuid4(),
            uuid.uuid4(),
            f"vm{i}",
            tenant,
            "t",
            net,
            "n",
            10,
            f"02:00:00:00:00:0{i}",
            (f"10.10.0.{i}", f"fd10::{i}"),
            None,
        )
        for i in (1, 2, 3)
    ]
    for i in range(extra):
        mac = f"fa:16:3e:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
        ip = f"10.{100 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
        bindings.append(
            Binding(
                uuid.uuid4(),
                uuid.uuid4(),
                f"x{i}",
                uuid.uuid4(),
                "x",
                net,
                "n",
                100 + i % 3000,
                mac,
                (ip,),
                None,
            )
        )
    return PortIndex(bindings)


def cpu(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.process_time()
    fn()
    return time.process_time() - start


def repeated_pcap(path: Path, repeat: int) -> None:
    """The fixture's records, ``repeat`` times, with fresh timestamps (sfacctd reads them)."""
    data = FIXTURE.read_bytes()
    head, body = data[:24], data[24:]
    records: list[bytes] = []
    p = 0
    while p + 16 <= len(body):
        caplen = struct.unpack_from("<I", body, p + 8)[0]
        records.append(body[p + 16 : p + 16 + caplen])
        p += 16 + caplen
    with path.open("wb") as f:
        f.write(head)
        n = 0
        for _ in range(repeat):
            for r in records:
                f.write(struct.pack("<IIII", 1_700_000_000 + n // 1000, n % 1000, len(r), len(r)))
                f.write(r)
                n += 1


def sfacctd(path: Path, workdir: Path) -> tuple[float, float] | None:
    """(CPU seconds, wall seconds) of sfacctd replaying ``path``; None without pmacct."""
    binary = shutil.which("sfacctd") or "/usr/sbin/sfacctd"
    if not Path(binary).exists():
        return None
    conf = workdir / "sfacctd.conf"
    conf.write_text(
        "daemonize: false\n"
        f"pcap_savefile: {path}\n"
        "pcap_savefile_wait: false\n"
        f"pidfile: {workdir / 'sfacctd.pid'}\n"
        "plugins: print[f]\n"
        "aggregate[f]: src_mac, dst_mac, vlan, src_host, dst_host, src_port, dst_port, proto, "
        "tos, in_iface, out_iface\n"
        "print_output[f]: csv\n"
        f"print_output_file[f]: {workdir / 'flows.csv'}\n"
        "print_refresh_time[f]: 3600\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([binary, "-f", str(conf)], capture_output=True, check=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=400, help="times the fixture is replayed")
    ap.add_argument("--ports", type=int, default=10_000, help="extra ports in the port map")
    ap.add_argument(
        "--peer-repeat",
        type=int,
        default=10_000,
        help="times sfacctd replays the fixture (more: its start-up weighs less)",
    )
    args = ap.parse_args()

    base = list(pcap.udp_payloads(FIXTURE))
    dgrams = base * args.repeat
    flows = sum(len(decode(d).flows) for d in base) * args.repeat
    counters = sum(len(decode(d).counters) for d in base) * args.repeat
    samples = flows + counters
    index = port_index(args.ports)
    print(
        f"workload: {len(dgrams):,} datagrams, {flows:,} flow + {counters:,} counter samples "
        f"(OVS fixture x{args.repeat}); port map of {len(index):,} ports"
    )

    def decode_all() -> None:
        for d in dgrams:
            decode(d)

    def attribute_all() -> None:
        r = Rollup()
        now = time.time()
        for d in dgrams:
            g = decode(d)
            for f in g.flows:
                r.add_flow(f, index, now)
            for c in g.counters:
                r.add_counters(c, now)

    tmp = Path(tempfile.mkdtemp(prefix="bench-sflow-"))
    try:
        db = Database(f"sqlite:///{tmp / 'fuyun.db'}")
        upgrade(db.engine)
        collector = Collector(db, DatabaseFlowStore(db))
        collector.portmap.current()  # load once (empty store), then cached
        collector.portmap.index = index
        collector.portmap._checked = time.monotonic() + 3600  # the bench measures handling

        def handle_all() -> None:
            for d in dgrams:
                collector.handle(d)

        rows = []
        for label, fn in (
            ("decode only", decode_all),
            ("decode + attribute + roll-up", attribute_all),
            ("Collector.handle (+ metrics)", handle_all),
        ):
            secs = cpu(fn)
            rows.append((label, secs, samples / secs))
        assert collector.tally.malformed == 0
        attributed = collector.tally.attributed
        big, small = tmp / "replay.pcap", tmp / "once.pcap"
        repeated_pcap(big, args.peer_repeat)
        repeated_pcap(small, 1)
        # sfacctd's start-up (cache allocation, plugin fork) is measured on one pass of the
        # fixture and taken off, so its rate is of steady-state decoding like ours.
        once, full = sfacctd(small, tmp), sfacctd(big, tmp)
        peer = (full[0] - once[0], full[1] - once[1], full[0]) if once and full else None
        db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    goal = 20_000
    print(f"attributed flow samples: {attributed:,} of {flows:,}")
    print()
    print("| path | CPU s | samples/s per core | vs 20k goal | vs sfacctd |")
    print("|---|---:|---:|---:|---:|")
    per_pass = samples // args.repeat
    peer_samples = per_pass * (args.peer_repeat - 1)
    peer_rate = peer_samples / peer[0] if peer else None
    for label, secs, rate in rows:
        ratio = f"{rate / peer_rate:.2f}x" if peer_rate else "-"
        print(f"| fuyun {label} | {secs:.2f} | {rate:,.0f} | {rate / goal:.1f}x | {ratio} |")
    if peer:
        print(
            f"| sfacctd 1.7.7 replay, print plugin (CPU of both processes, start-up "
            f"taken off) | {peer[0]:.2f} | "
            f"{peer_rate:,.0f} | {peer_rate / goal:.1f}x | 1.00x |"
        )
        print(
            f"\nsfacctd replayed the fixture x{args.peer_repeat} ({peer_samples + per_pass:,} "
            f"samples): {peer[2]:.2f} CPU s in all; wall {peer[1]:.1f} s beyond start-up, "
            f"i.e. {peer_samples / peer[1]:,.0f} samples/s of wall time (its pcap replay is "
            "paced, so CPU time is the figure to compare)"
        )
    else:
        print("| sfacctd | - | not installed (Debian pmacct) | - | - |")


if __name__ == "__main__":
    main()
