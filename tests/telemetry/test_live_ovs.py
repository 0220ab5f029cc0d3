"""The fixture script against a live Open vSwitch: the real exporter still decodes cleanly.

Runs ``fixtures/capture.py`` (private OVS, netdev datapath, namespaces of its own, traffic
between them) into a temporary directory and decodes everything the agent exported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fuyun.telemetry import pcap
from fuyun.telemetry.sflow import decode
from tests.support.capabilities import missing

CAPTURE = Path(__file__).parent / "fixtures" / "capture.py"
TOOLS = ("ovs-vswitchd", "ovsdb-server", "tcpdump", "iperf3", "ping", "ethtool", "ip")


@pytest.mark.slow
def test_open_vswitch_sflow_agent_output_decodes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        missing("root", "network namespaces and Open vSwitch need root")
    absent = [t for t in TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if absent:
        missing("lab tools", f"not installed: {', '.join(absent)}")
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
