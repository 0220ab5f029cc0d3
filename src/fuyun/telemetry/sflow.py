"""sFlow version 5 datagram decoder (sflow.org "sFlow Version 5", July 2004).

Decodes flow samples (standard 0:1 and expanded 0:3) with their raw packet
header (0:1) and extended switch (0:1001) records, and counter samples
(standard 0:2 and expanded 0:4) with the generic interface counters (0:1).
Records and samples of other formats are skipped by their length, as the
specification asks of a collector.

A datagram is decoded whole or not at all: any structural fault — wrong version,
a length that runs past the end, a count that cannot fit — raises
:class:`MalformedDatagram`, which a collector counts and drops. Every loop
advances by at least 8 bytes per step and every count is checked against the
bytes left, so no input can make it run long.

Speed matters (a collector sees tens of thousands of samples a second per core):
precompiled :class:`struct.Struct` objects, ``unpack_from`` on the datagram
itself (no slicing but for addresses), tuples for results.
"""

from __future__ import annotations

from struct import Struct
from struct import error as StructError
from typing import NamedTuple

from fuyun.telemetry.headers import EMPTY, Header, parse_ethernet

SFLOW_VERSION = 5
FLOW_SAMPLE, COUNTER_SAMPLE, FLOW_SAMPLE_EXPANDED, COUNTER_SAMPLE_EXPANDED = 1, 2, 3, 4
RAW_HEADER, EXTENDED_SWITCH = 1, 1001
GENERIC_IF_COUNTERS = 1
HEADER_PROTO_ETHERNET = 1

_U32 = Struct("!I")
_U32X2 = Struct("!II")
_DGRAM_V4 = Struct("!II4sIIII")  # version, addr type, addr, sub agent, seq, uptime, count
_DGRAM_V6 = Struct("!II16sIIII")
_FLOW = Struct("!IIIIIIII")  # seq, source, rate, pool, drops, input, output, records
_FLOW_X = Struct("!IIIIIIIIIII")  # seq, src type, src index, rate, pool, drops, in fmt/val, ...
_COUNTER = Struct("!III")  # seq, source, records
_COUNTER_X = Struct("!IIII")  # seq, src type, src index, records
_RAW = Struct("!IIII")  # header protocol, frame length, stripped, header length
_SWITCH = Struct("!IIII")  # src vlan, src priority, dst vlan, dst priority
_IF_COUNTERS = Struct("!IIQIIQIIIIIIQIIIIII")
_IF_COUNTERS_LEN = _IF_COUNTERS.size  # 88


class MalformedDatagram(ValueError):
    """The datagram is not well-formed sFlow v5; the collector drops and counts it."""


class FlowSample(NamedTuple):
    """One sampled packet: where it was seen, how it was sampled, what it carried."""

    agent: bytes
    sub_agent: int
    sequence: int  # the sample's own sequence number, per source
    source_type: int
    source_index: int
    sampling_rate: int
    sample_pool: int
    drops: int
    input_if: int
    output_if: int
    header_protocol: int
    frame_length: int
    stripped: int
    header_length: int
    header: Header
    src_vlan: int
    dst_vlan: int

    @property
    def vlan(self) -> int:
        """The segment's VLAN: the frame's own tag, else the switch's record (in, then out)."""
        return self.header.vlan or self.src_vlan or self.dst_vlan


class IfCounters(NamedTuple):
    """Generic interface counters (RFC 2233 ifTable/ifXTable subset), as exported."""

    if_index: int
    if_type: int
    if_speed: int
    if_direction: int
    if_status: int
    in_octets: int
    in_ucast_pkts: int
    in_multicast_pkts: int
    in_broadcast_pkts: int
    in_discards: int
    in_errors: int
    in_unknown_protos: int
    out_octets: int
    out_ucast_pkts: int
    out_multicast_pkts: int
    out_broadcast_pkts: int
    out_discards: int
    out_errors: int
    promiscuous_mode: int


class CounterSample(NamedTuple):
    agent: bytes
    sub_agent: int
    sequence: int
    source_type: int
    source_index: int
    uptime_ms: int
    interface: IfCounters | None


class Datagram(NamedTuple):
    agent: bytes
    sub_agent: int
    sequence: int
    uptime_ms: int
    flows: list[FlowSample]
    counters: list[CounterSample]


def decode(data: bytes) -> Datagram:
    """Decode one UDP payload; raise :class:`MalformedDatagram` on any structural fault."""
    try:
        return _decode(data)
    except StructError as exc:
        raise MalformedDatagram(f"truncated: {exc}") from None
    except IndexError:
        raise MalformedDatagram("truncated") from None


def _decode(buf: bytes) -> Datagram:
    size = len(buf)
    if size < 28:
        raise MalformedDatagram(f"datagram of {size} bytes is shorter than an sFlow header")
    version, addr_type = _U32X2.unpack_from(buf, 0)
    if version != SFLOW_VERSION:
        raise MalformedDatagram(f"version {version}, expected 5")
    if addr_type == 1:
        _, _, agent, sub_agent, seq, uptime, count = _DGRAM_V4.unpack_from(buf, 0)
        p = 28
    elif addr_type == 2:
        _, _, agent, sub_agent, seq, uptime, count = _DGRAM_V6.unpack_from(buf, 0)
        p = 40
    else:
        raise MalformedDatagram(f"agent address type {addr_type}")
    if count * 8 > size - p:
        raise MalformedDatagram(f"{count} samples cannot fit in {size - p} bytes")
    flows: list[FlowSample] = []
    counters: list[CounterSample] = []
    for _ in range(count):
        fmt, length = _U32X2.unpack_from(buf, p)
        p += 8
        end = p + length
        if end > size or length & 3:
            raise MalformedDatagram(f"sample of {length} bytes at offset {p - 8} overruns")
        if fmt == FLOW_SAMPLE:
            sseq, source, rate, pool, drops, in_if, out_if, nrec = _FLOW.unpack_from(buf, p)
            flows.append(
                _flow(
                    buf,
                    p + 32,
                    end,
                    nrec,
                    agent,
                    sub_agent,
                    sseq,
                    source >> 24,
                    source & 0xFFFFFF,
                    rate,
                    pool,
                    drops,
                    in_if & 0x3FFFFFFF,
                    out_if,
                )
            )
        elif fmt == FLOW_SAMPLE_EXPANDED:
            sseq, st, si, rate, pool, drops, _, in_if, of, out_if, nrec = _FLOW_X.unpack_from(
                buf, p
            )
            flows.append(
                _flow(
                    buf,
                    p + 44,
                    end,
                    nrec,
                    agent,
                    sub_agent,
                    sseq,
                    st,
                    si,
                    rate,
                    pool,
                    drops,
                    in_if,
                    (of << 30) | out_if,
                )
            )
        elif fmt == COUNTER_SAMPLE:
            sseq, source, nrec = _COUNTER.unpack_from(buf, p)
            counters.append(
                _counters(
                    buf,
                    p + 12,
                    end,
                    nrec,
                    agent,
                    sub_agent,
                    sseq,
                    source >> 24,
                    source & 0xFFFFFF,
                    uptime,
                )
            )
        elif fmt == COUNTER_SAMPLE_EXPANDED:
            sseq, st, si, nrec = _COUNTER_X.unpack_from(buf, p)
            counters.append(
                _counters(buf, p + 16, end, nrec, agent, sub_agent, sseq, st, si, uptime)
            )
        p = end
    return Datagram(agent, sub_agent, seq, uptime, flows, counters)


def _flow(
    buf: bytes,
    p: int,
    end: int,
    nrec: int,
    agent: bytes,
    sub_agent: int,
    seq: int,
    stype: int,
    sindex: int,
    rate: int,
    pool: int,
    drops: int,
    in_if: int,
    out_if: int,
) -> FlowSample:
    if nrec * 8 > end - p:
        raise MalformedDatagram(f"{nrec} flow records cannot fit in {end - p} bytes")
    hproto = frame_len = stripped = hlen = src_vlan = dst_vlan = 0
    header = EMPTY
    for _ in range(nrec):
        fmt, length = _U32X2.unpack_from(buf, p)
        p += 8
        rend = p + length
        if rend > end:
            raise MalformedDatagram(f"flow record of {length} bytes overruns its sample")
        if fmt == RAW_HEADER:
            hproto, frame_len, stripped, hlen = _RAW.unpack_from(buf, p)
            if p + 16 + hlen > rend:
                raise MalformedDatagram(f"sampled header of {hlen} bytes overruns its record")
            if hproto == HEADER_PROTO_ETHERNET:
                header = parse_ethernet(buf, p + 16, p + 16 + hlen)
        elif fmt == EXTENDED_SWITCH:
            if length < 16:
                raise MalformedDatagram("extended switch record is short")
            src_vlan, _, dst_vlan, _ = _SWITCH.unpack_from(buf, p)
        p = rend
    return FlowSample(
        agent,
        sub_agent,
        seq,
        stype,
        sindex,
        rate,
        pool,
        drops,
        in_if,
        out_if,
        hproto,
        frame_len,
        stripped,
        hlen,
        header,
        src_vlan,
        dst_vlan,
    )


def _counters(
    buf: bytes,
    p: int,
    end: int,
    nrec: int,
    agent: bytes,
    sub_agent: int,
    seq: int,
    stype: int,
    sindex: int,
    uptime: int,
) -> CounterSample:
    if nrec * 8 > end - p:
        raise MalformedDatagram(f"{nrec} counter records cannot fit in {end - p} bytes")
    interface = None
    for _ in range(nrec):
        fmt, length = _U32X2.unpack_from(buf, p)
        p += 8
        rend = p + length
        if rend > end:
            raise MalformedDatagram(f"counter record of {length} bytes overruns its sample")
        if fmt == GENERIC_IF_COUNTERS:
            if length < _IF_COUNTERS_LEN:
                raise MalformedDatagram(f"generic interface counters of {length} bytes")
            interface = IfCounters._make(_IF_COUNTERS.unpack_from(buf, p))
        p = rend
    return CounterSample(agent, sub_agent, seq, stype, sindex, uptime, interface)
