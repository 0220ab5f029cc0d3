"""Independent sFlow decoders run on the same bytes: Wireshark's tshark and pmacct's sfacctd."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.support.capabilities import missing

PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58}


def tshark(path: Path, fields: list[str]) -> list[list[list[str]]]:
    """Per frame, per field, every occurrence (in packet order)."""
    if shutil.which("tshark") is None:
        missing("tshark", "Debian package tshark is not installed")
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "occurrence=a"]
    cmd += ["-E", "aggregator=|", "-E", "separator=;"]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    return [
        [cell.split("|") if cell else [] for cell in line.split(";")]
        for line in res.stdout.splitlines()
    ]


def sfacctd(
    path: Path, workdir: Path
) -> tuple[dict[tuple[object, ...], list[int]], dict[tuple[int, int], tuple[int, ...]]]:
    """Replay a pcap through sfacctd: flows aggregated by every header field sfacctd keeps,
    and generic interface counters keyed by (source index, counter sample sequence)."""
    binary = shutil.which("sfacctd") or "/usr/sbin/sfacctd"
    if not Path(binary).exists():
        missing("sfacctd", "Debian package pmacct is not installed")
    flows_out, counters_out = workdir / "flows.json", workdir / "counters.json"
    conf = workdir / "sfacctd.conf"
    conf.write_text(
        "daemonize: false\n"
        f"pcap_savefile: {path}\n"
        "pcap_savefile_wait: false\n"
        f"pidfile: {workdir / 'sfacctd.pid'}\n"
        "plugins: print[f]\n"
        "aggregate[f]: src_mac, dst_mac, vlan, src_host, dst_host, src_port, dst_port, proto, "
        "tos, in_iface, out_iface, sampling_rate\n"
        "print_output[f]: json\n"
        f"print_output_file[f]: {flows_out}\n"
        "print_refresh_time[f]: 3600\n"
        f"sfacctd_counter_file: {counters_out}\n"
        "sfacctd_counter_output: json\n"
    )
    subprocess.run([binary, "-f", str(conf)], capture_output=True, check=True, timeout=60)
    flows: dict[tuple[object, ...], list[int]] = {}
    for line in flows_out.read_text().splitlines():
        r = json.loads(line)
        key = (
            r["mac_src"],
            r["mac_dst"],
            r["vlan"],
            r["iface_in"],
            r["iface_out"],
            r["ip_src"],
            r["ip_dst"],
            r["port_src"],
            r["port_dst"],
            PROTOCOLS.get(r["ip_proto"], -1),
            r["tos"],
            r["sampling_rate"],
        )
        flows[key] = [r["packets"], r["bytes"]]
    counters: dict[tuple[int, int], tuple[int, ...]] = {}
    for line in counters_out.read_text().splitlines():
        r = json.loads(line)
        if r.get("sf_cnt_type") != "sflow_cnt_generic":
            continue
        counters[(r["source_id_index"], r["sflow_cnt_seq"])] = (
            r["ifIndex"],
            r["ifType"],
            r["ifSpeed"],
            r["ifDirection"],
            r["ifStatus"],
            r["ifInOctets"],
            r["ifInUcastPkts"],
            r["ifInDiscards"],
            r["ifInErrors"],
            r["ifOutOctets"],
            r["ifOutUcastPkts"],
            r["ifOutDiscards"],
            r["ifOutErrors"],
        )
    return flows, counters
