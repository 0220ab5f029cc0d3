"""The sFlow decoder on a real exporter's datagrams and on hand-built ones.

``fixtures/ovs-sflow.pcap`` was recorded from Open vSwitch's sFlow agent by
``fixtures/capture.py``: ICMP, ICMPv6, TCP (iperf3), UDP and 802.1Q-tagged ICMP
between namespaces, sampling every packet, counters polled every second.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fuyun.telemetry import pcap
from fuyun.telemetry.headers import ip_text, mac_text
from fuyun.telemetry.sflow import MalformedDatagram, decode
from tests.telemetry import synth
from tests.telemetry.references import sfacctd, tshark

FIXTURE = Path(__file__).parent / "fixtures" / "ovs-sflow.pcap"


def fixture_datagrams() -> list[bytes]:
    return list(pcap.udp_payloads(FIXTURE))


def test_fixture_decodes_whole() -> None:
    dgrams = [decode(d) for d in fixture_datagrams()]
    flows = [f for d in dgrams for f in d.flows]
    counters = [c for d in dgrams for c in d.counters]
    assert len(dgrams) >= 8
    assert len(flows) >= 40 and len(counters) >= 10
    assert {d.agent for d in dgrams} == {bytes([127, 0, 0, 1])}
    protos = {f.header.proto for f in flows}
    assert {1, 6, 17, 58} <= protos  # ICMP, TCP, UDP, ICMPv6
    tagged = [f for f in flows if f.header.vlan]
    assert tagged and all(f.header.vlan == 10 and f.src_vlan == 10 for f in tagged)
    # OVS reports the frame with its FCS and says it stripped those 4 bytes.
    assert all(f.stripped == 4 and f.frame_length >= f.header_length + 4 for f in flows)
    tcp = [f for f in flows if f.header.proto == 6]
    assert {5201} & {f.header.dst_port for f in tcp}
    assert any(c.interface and c.interface.in_octets > 0 for c in counters)


def _tshark_fields(fields: list[str]) -> list[list[list[str]]]:
    return tshark(FIXTURE, fields)


def test_flow_samples_match_tshark_field_by_field() -> None:
    fields = [
        "sflow_245.sequence_number",
        "sflow.flow_sample.sequence_number",
        "sflow.flow_sample.sampling_rate",
        "sflow.flow_sample.sample_pool",
        "sflow.flow_sample.input_interface",
        "sflow.flow_sample.output_interface",
        "sflow_245.header.frame_length",
        "sflow_245.header.payload_stripped",
        "sflow_245.header.sampled_header_length",
        "sflow_245.vlan.in",
        "sflow_245.vlan.out",
        "eth.src",
        "eth.dst",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "tcp.srcport",
        "tcp.dstport",
        "vlan.id",
    ]
    rows = _tshark_fields(fields)
    ours = [decode(d) for d in fixture_datagrams()]
    assert len(rows) == len(ours)
    checked = 0
    for row, d in zip(rows, ours, strict=True):
        col = dict(zip(fields, row, strict=True))
        assert int(col["sflow_245.sequence_number"][0]) == d.sequence
        if not d.flows:
            continue
        fl = d.flows
        assert [int(x) for x in col["sflow.flow_sample.sequence_number"]] == [
            f.sequence for f in fl
        ]
        assert [int(x) for x in col["sflow.flow_sample.sampling_rate"]] == [
            f.sampling_rate for f in fl
        ]
        assert [int(x) for x in col["sflow.flow_sample.sample_pool"]] == [f.sample_pool for f in fl]
        assert [int(x) for x in col["sflow.flow_sample.input_interface"]] == [
            f.input_if for f in fl
        ]
        assert [int(x, 16) for x in col["sflow.flow_sample.output_interface"]] == [
            f.output_if for f in fl
        ]
        assert [int(x) for x in col["sflow_245.header.frame_length"]] == [
            f.frame_length for f in fl
        ]
        assert [int(x) for x in col["sflow_245.header.payload_stripped"]] == [
            f.stripped for f in fl
        ]
        assert [int(x) for x in col["sflow_245.header.sampled_header_length"]] == [
            f.header_length for f in fl
        ]
        assert [int(x) for x in col["sflow_245.vlan.in"]] == [f.src_vlan for f in fl]
        assert [int(x) for x in col["sflow_245.vlan.out"]] == [f.dst_vlan for f in fl]
        # The first Ethernet/IP layer is the capture's own (loopback carrying sFlow).
        assert col["eth.src"][1:] == [mac_text(f.header.src_mac) for f in fl]
        assert col["eth.dst"][1:] == [mac_text(f.header.dst_mac) for f in fl]
        v4 = [f.header for f in fl if f.header.ethertype == 0x0800 and f.header.src_ip]
        # tshark also lists the packet an ICMP error quotes, right after the error's own.
        quoting = {i for i, h in enumerate(v4) if h.proto == 1 and h.icmp_type in (3, 11)}
        expect_src: list[str] = []
        expect_dst: list[str] = []
        for i, h in enumerate(v4):
            expect_src.append(ip_text(h.src_ip))
            expect_dst.append(ip_text(h.dst_ip))
            if i in quoting:  # the quoted packet went the other way
                expect_src.append(ip_text(h.dst_ip))
                expect_dst.append(ip_text(h.src_ip))
        assert col["ip.src"][1:] == expect_src
        assert col["ip.dst"][1:] == expect_dst
        v6 = [f.header for f in fl if f.header.ethertype == 0x86DD]
        assert col["ipv6.src"] == [ip_text(h.src_ip) for h in v6]
        tcp = [f.header for f in fl if f.header.proto == 6]
        assert [int(x) for x in col["tcp.srcport"]] == [h.src_port for h in tcp]
        assert [int(x) for x in col["tcp.dstport"]] == [h.dst_port for h in tcp]
        assert [int(x) for x in col["vlan.id"]] == [f.header.vlan for f in fl if f.header.vlan]
        checked += len(fl)
    assert checked >= 40


def test_flows_and_counters_match_sfacctd(tmp_path: Path) -> None:
    flows, counters = sfacctd(FIXTURE, tmp_path)
    ours: dict[tuple[object, ...], list[int]] = {}
    non_ip = 0
    for d in fixture_datagrams():
        for f in decode(d).flows:
            h = f.header
            if not h.src_ip:  # ARP: sfacctd keeps IP flows only
                non_ip += 1
                continue
            key = (
                mac_text(h.src_mac),
                mac_text(h.dst_mac),
                f.vlan,
                f.input_if,
                f.output_if,
                ip_text(h.src_ip),
                ip_text(h.dst_ip),
                h.src_port,
                h.dst_port,
                h.proto,
                h.tos,
                f.sampling_rate,
            )
            acc = ours.setdefault(key, [0, 0])
            acc[0] += 1
            acc[1] += f.frame_length
    assert ours == flows
    assert non_ip == 4  # ARP requests and replies
    generic = {
        (c.source_index, c.sequence): c.interface
        for d in fixture_datagrams()
        for c in decode(d).counters
        if c.interface is not None
    }
    assert len(counters) == len(generic) >= 10
    for key, theirs in counters.items():
        mine = generic[key]
        assert mine is not None
        assert (
            mine.if_index,
            mine.if_type,
            mine.if_speed,
            mine.if_direction,
            mine.if_status,
            mine.in_octets,
            mine.in_ucast_pkts,
            mine.in_discards,
            mine.in_errors,
            mine.out_octets,
            mine.out_ucast_pkts,
            mine.out_discards,
            mine.out_errors,
        ) == theirs


def test_expanded_samples_and_ipv6_udp_over_8021q() -> None:
    frame = synth.ether(
        "02:aa:00:00:00:01",
        "02:aa:00:00:00:02",
        "fd00::1",
        "fd00::2",
        vlan=123,
        proto=17,
        sport=5353,
        dport=53,
        payload=200,
    )
    data = synth.datagram(
        [
            synth.flow_sample(
                [synth.switch_record(123), synth.raw_header_record(frame)],
                seq=7,
                source=70000,
                rate=512,
                pool=9999,
                in_if=70000,
                out_if=70001,
                expanded=True,
            ),
            synth.counter_sample(
                synth.IfCounters(if_index=70000, in_octets=2**40, out_errors=3), expanded=True
            ),
        ],
        agent="2001:db8::1",
    )
    d = decode(data)
    (f,) = d.flows
    assert d.agent == bytes.fromhex("20010db8000000000000000000000001")
    assert (f.sequence, f.source_index, f.sampling_rate, f.sample_pool) == (7, 70000, 512, 9999)
    assert (f.input_if, f.output_if, f.src_vlan) == (70000, 70001, 123)
    assert f.frame_length == len(frame) + 4
    h = f.header
    assert (h.vlan, h.ethertype, h.proto, h.src_port, h.dst_port) == (123, 0x86DD, 17, 5353, 53)
    assert ip_text(h.src_ip) == "fd00::1" and ip_text(h.dst_ip) == "fd00::2"
    (c,) = d.counters
    assert c.source_index == 70000 and c.interface is not None
    assert c.interface.in_octets == 2**40 and c.interface.out_errors == 3


def test_icmp_and_truncated_headers_parse_as_far_as_they_go() -> None:
    icmp = synth.ether(
        "02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", proto=1, sport=8, dport=0
    )
    cut = synth.ether("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2")[:30]
    d = decode(
        synth.datagram(
            [
                synth.flow_sample([synth.raw_header_record(icmp)]),
                synth.flow_sample([synth.raw_header_record(cut, frame_length=1500)]),
            ]
        )
    )
    a, b = d.flows
    assert (a.header.proto, a.header.icmp_type, a.header.icmp_code) == (1, 8, 0)
    assert b.frame_length == 1504 and b.header.ethertype == 0x0800 and b.header.src_ip == b""


def test_unknown_sample_and_record_formats_are_skipped() -> None:
    unknown_record = struct.pack("!II", (9 << 12) | 77, 8) + b"\x01" * 8
    frame = synth.ether("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2")
    unknown_sample = struct.pack("!II", (4300 << 12) | 5, 12) + b"\0" * 12
    d = decode(
        synth.datagram(
            [unknown_sample, synth.flow_sample([unknown_record, synth.raw_header_record(frame)])]
        )
    )
    assert len(d.flows) == 1 and d.flows[0].header.dst_port == 80


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "shorter"),
        (struct.pack("!II", 4, 1) + b"\0" * 24, "version 4"),
        (struct.pack("!II", 5, 9) + b"\0" * 24, "address type 9"),
        (struct.pack("!II4sIIII", 5, 1, b"\0" * 4, 0, 0, 0, 10**6), "cannot fit"),
        (synth.datagram([synth.flow_sample([])])[:-4], "overruns"),
    ],
)
def test_malformed_datagrams_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(MalformedDatagram, match=why):
        decode(data)


def test_every_truncation_of_every_real_datagram_is_refused_or_decoded() -> None:
    for data in fixture_datagrams():
        for n in range(len(data)):
            with pytest.raises(MalformedDatagram):
                decode(data[:n])
