"""The fixture script against a live Open vSwitch: the real exporter still decodes cleanly.

Runs ``fixtures/capture.py`` (private OVS, netdev datapath, namespaces of its own, traffic
between them) into a temporary directory and decodes everything the agent exported.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fuyun.telemetry import pcap
from fuyun.telemetry.portmap import Binding, PortIndex
from fuyun.telemetry.rollup import Rollup
from fuyun.telemetry.sflow import decode
from tests.support.capabilities import missing

CAPTURE = Path(__file__).parent / "fixtures" / "capture.py"
TOOLS = ("ovs-vswitchd", "ovsdb-server", "tcpdump", "iperf3", "ping", "ethtool", "ip")


def _last_sequence(capture: Path) -> int:
    seqs = [decode(d).sequence for d in pcap.udp_payloads(capture)]
    return max(seqs, default=0)


def _require_lab() -> None:
    if os.geteuid() != 0:
        missing("root", "network namespaces and Open vSwitch need root")
    absent = [t for t in TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if absent:
        missing("lab tools", f"not installed: {', '.join(absent)}")


@pytest.mark.slow
def test_open_vswitch_sflow_agent_output_decodes(tmp_path: Path) -> None:
    _require_lab()
    res = subprocess.run(
        [sys.executable, str(CAPTURE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    dgrams = [decode(d) for d in pcap.udp_payloads(tmp_path / "ovs-sflow.pcap")]
    flows = [f for d in dgrams for f in d.flows]
    assert {1, 6, 17, 58} <= {f.header.proto for f in flows}
    # Nothing lost on the way: the agent's datagram sequence has no gap.
    seqs = [d.sequence for d in dgrams]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert any(f.header.vlan == 10 for f in flows)
    assert any(c.interface for d in dgrams for c in d.counters)
    # Every sampled frame was seen whole: OVS adds the FCS to the frame length.
    assert all(f.frame_length - f.stripped >= f.header_length for f in flows)


@pytest.mark.slow
def test_iperf3_through_open_vswitch_is_accounted_within_the_sampling_bound() -> None:
    """Real TCP between two namespaces through OVS sampling 1 in 8: the estimate of what VM a
    sent and VM b received is within 4 standard deviations of the frames b's NIC received
    (the kernel's exact count, plus the FCS OVS includes). b's side is the truth because the
    userspace datapath may drop frames a's NIC sent before the switch saw them (TCP resends
    them); sFlow reports what crossed the switch."""
    _require_lab()
    from tests.telemetry.fixtures.capture import iperf, sflow_lab

    rate = 8
    tenant_a, tenant_b, net = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    vm_a, vm_b = uuid.uuid4(), uuid.uuid4()
    index = PortIndex(
        [
            Binding(
                uuid.uuid4(),
                vm_a,
                "a",
                tenant_a,
                "ta",
                net,
                "n",
                10,
                "02:00:00:00:00:01",
                ("10.10.0.1",),
                None,
            ),
            Binding(
                uuid.uuid4(),
                vm_b,
                "b",
                tenant_b,
                "tb",
                net,
                "n",
                10,
                "02:00:00:00:00:02",
                ("10.10.0.2",),
                None,
            ),
        ]
    )
    with sflow_lab(sampling=rate, polling=1) as lab:
        capture = lab.root / "iperf.pcap"
        dump = lab.start_capture(capture)
        before = lab.nic_counters(lab.vms[1])
        iperf(lab, "-n", "8M")
        after = lab.nic_counters(lab.vms[1])
        # Samples wait in the agent until a datagram fills or a poll sends it: once two more
        # datagrams (counter polls come every second) follow the transfer, all are out.
        last = _last_sequence(capture)
        deadline = time.monotonic() + 15
        while _last_sequence(capture) < last + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        dump.terminate()
        dump.wait(timeout=10)
        rollup = Rollup()
        for data in pcap.udp_payloads(capture):
            for f in decode(data).flows:
                rollup.add_flow(f, index, now_s=1000.0)
    packets = after["rx_packets"] - before["rx_packets"]
    true = after["rx_bytes"] - before["rx_bytes"] + 4 * packets
    sums = {vm: acc for (_, vm, _), acc in rollup.traffic.items()}
    est_tx_a, est_rx_b = sums[vm_a][0], sums[vm_b][1]
    bound = 4 * math.sqrt(rate * packets * 1518**2)  # sum of L^2 <= n * Lmax^2
    assert packets > 3000
    assert abs(est_tx_a - true) <= bound, (est_tx_a, true, bound)
    assert abs(est_rx_b - true) <= bound, (est_rx_b, true, bound)
