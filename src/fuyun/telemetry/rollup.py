"""Attribute decoded samples to VM ports and add them up in 10-second buckets.

A flow sample stands for ``sampling_rate`` frames like it, so it adds
``frame_length * rate`` bytes and ``rate`` packets (frame length as exported:
OVS counts the 4-byte FCS). The source port is charged with tx, the destination
port with rx.

In a fabric every host's vswitch samples, so one frame crossing two hosts is
sampled twice — once entering the sender's vswitch, once entering the
receiver's. When the exporter is a known host (its agent address is the host's
management address) a sample charges only ports bound to that host: tx on the
sender's host, rx on the receiver's, each frame once. An unknown exporter
charges both ends.

Counter samples become deltas per interface (a counter that went backwards was
reset and is skipped). An interface is tied to a VM port when flow samples from
that port's MAC entered through it, which is how port drops and errors reach
the port's owner.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fuyun.telemetry.portmap import Binding, PortIndex
from fuyun.telemetry.sflow import CounterSample, FlowSample, IfCounters

BASE_RESOLUTION_S = 10


@dataclass(frozen=True)
class TrafficRow:
    resolution_s: int
    bucket_start: datetime
    tenant_id: uuid.UUID
    vm_id: uuid.UUID
    network_id: uuid.UUID
    tx_bytes: int
    rx_bytes: int
    tx_packets: int
    rx_packets: int
    samples: int


@dataclass(frozen=True)
class InterfaceRow:
    resolution_s: int
    bucket_start: datetime
    agent: str
    if_index: int
    host: str | None
    vm_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    speed_bps: int
    seconds: float
    in_octets: int
    out_octets: int
    in_errors: int
    out_errors: int
    in_discards: int
    out_discards: int


@dataclass
class Tally:
    """What the collector has seen since start; exported as Prometheus counters too."""

    datagrams: int = 0
    malformed: int = 0
    flow_samples: int = 0
    counter_samples: int = 0
    attributed: int = 0
    unattributed: int = 0


def bucket_of(epoch_s: float, resolution_s: int = BASE_RESOLUTION_S) -> int:
    return int(epoch_s) // resolution_s * resolution_s


def to_time(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class Rollup:
    """In-memory 10-second buckets between flushes. Not thread-safe: one collector owns it."""

    def __init__(self) -> None:
        # (bucket, vm_id, network_id) -> [tx_bytes, rx_bytes, tx_pkts, rx_pkts, samples]
        self.traffic: dict[tuple[int, uuid.UUID, uuid.UUID], list[int]] = {}
        self.owners: dict[uuid.UUID, uuid.UUID] = {}  # vm -> tenant
        # (agent, ifIndex) -> the port whose frames enter there.
        self.interface_port: dict[tuple[bytes, int], Binding] = {}
        self._last: dict[tuple[bytes, int, int], tuple[float, IfCounters]] = {}
        # (bucket, agent, ifIndex) -> [speed, seconds, in, out, in_err, out_err, in_disc, out_disc]
        self.interfaces: dict[tuple[int, bytes, int], list[float]] = {}
        self.tally = Tally()

    def add_flow(self, f: FlowSample, index: PortIndex, now_s: float) -> bool:
        """Charge one sample to its ports; ``False`` when neither end is known."""
        h = f.header
        vlan = h.vlan or f.src_vlan or f.dst_vlan
        here = index.agents.get(f.agent)
        bucket = int(now_s) // BASE_RESOLUTION_S * BASE_RESOLUTION_S
        rate = f.sampling_rate or 1
        nbytes = f.frame_length * rate
        hit = False
        src = index.lookup(vlan, h.src_mac, h.src_ip)
        if src is not None and (here is None or src.host == here):
            key = (bucket, src.vm_id, src.network_id)
            acc = self.traffic.get(key)
            if acc is None:
                acc = self.traffic[key] = [0, 0, 0, 0, 0]
                self.owners[src.vm_id] = src.tenant_id
            acc[0] += nbytes
            acc[2] += rate
            acc[4] += 1
            hit = True
            if f.source_type == 0:
                self.interface_port[(f.agent, f.input_if)] = src
        dst = index.lookup(vlan, h.dst_mac, h.dst_ip)
        if dst is not None and (here is None or dst.host == here):
            key = (bucket, dst.vm_id, dst.network_id)
            acc = self.traffic.get(key)
            if acc is None:
                acc = self.traffic[key] = [0, 0, 0, 0, 0]
                self.owners[dst.vm_id] = dst.tenant_id
            acc[1] += nbytes
            acc[3] += rate
            if not hit:
                acc[4] += 1
            hit = True
        if hit:
            self.tally.attributed += 1
        else:
            self.tally.unattributed += 1
        return hit

    def add_counters(self, c: CounterSample, now_s: float) -> None:
        i = c.interface
        if i is None:
            return
        key = (c.agent, c.source_type, i.if_index)
        prev = self._last.get(key)
        self._last[key] = (now_s, i)
        if prev is None:
            return
        then, p = prev
        deltas = (
            i.in_octets - p.in_octets,
            i.out_octets - p.out_octets,
            i.in_errors - p.in_errors,
            i.out_errors - p.out_errors,
            i.in_discards - p.in_discards,
            i.out_discards - p.out_discards,
        )
        if now_s <= then or min(deltas) < 0:
            return  # a reset (or a reordered datagram) tells nothing about this interval
        bucket = int(now_s) // BASE_RESOLUTION_S * BASE_RESOLUTION_S
        acc = self.interfaces.setdefault((bucket, c.agent, i.if_index), [0.0] * 8)
        acc[0] = float(i.if_speed)
        acc[1] += now_s - then
        for n, d in enumerate(deltas, start=2):
            acc[n] += d

    def drain(
        self, index: PortIndex, *, before_s: float | None = None
    ) -> tuple[list[TrafficRow], list[InterfaceRow]]:
        """Take the buckets that ended before ``before_s`` (all with ``None``) out as rows."""
        limit = None if before_s is None else bucket_of(before_s)
        traffic: list[TrafficRow] = []
        for key in [k for k in self.traffic if limit is None or k[0] < limit]:
            bucket, vm_id, network_id = key
            tx, rx, txp, rxp, n = self.traffic.pop(key)
            traffic.append(
                TrafficRow(
                    BASE_RESOLUTION_S,
                    to_time(bucket),
                    self.owners[vm_id],
                    vm_id,
                    network_id,
                    tx,
                    rx,
                    txp,
                    rxp,
                    n,
                )
            )
        interfaces: list[InterfaceRow] = []
        for key in [k for k in self.interfaces if limit is None or k[0] < limit]:
            bucket, agent, if_index = key
            speed, secs, i_o, o_o, i_e, o_e, i_d, o_d = self.interfaces.pop(key)
            port = self.interface_port.get((agent, if_index))
            interfaces.append(
                InterfaceRow(
                    BASE_RESOLUTION_S,
                    to_time(bucket),
                    agent_text(agent),
                    if_index,
                    index.agents.get(agent),
                    port.vm_id if port else None,
                    port.tenant_id if port else None,
                    int(speed),
                    secs,
                    int(i_o),
                    int(o_o),
                    int(i_e),
                    int(o_e),
                    int(i_d),
                    int(o_d),
                )
            )
        return traffic, interfaces


def agent_text(agent: bytes) -> str:
    return str(ipaddress.ip_address(agent))
