"""Compiling QoS intent into per-device documents: :class:`HostQos` and the ToR's classes.

A host gets one :class:`~fuyun.domain.qos.HostQos`: a port with a port policy is
shaped to it (min = guarantee, max = ceiling); a tenant that has QoS on the host
gets a class holding its ports, owed :func:`~fuyun.qos.admission.tenant_need` and
capped by its aggregate ceiling (0 = line rate). A ToR gets a class per tenant
VLAN below it whose guarantees add up to exactly what admission promised on its
uplink for those tenants. Pure functions, sorted output: the same intent always
yields the same bytes, so a device's generation moves only when something changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from fuyun.domain.qos import HostQos, PortQos, TenantQos
from fuyun.qos.admission import tenant_need
from fuyun.qos.model import MBPS, HostInput, PortRow, Rates


def needs(host: HostInput) -> dict[str, int]:
    """Mbit/s to admit on this host per tenant with QoS here."""
    by_tenant: dict[str, list[PortRow]] = defaultdict(list)
    for p in host.ports:
        by_tenant[p.tenant].append(p)
    out = {}
    for tenant, ports in by_tenant.items():
        agg = host.aggregates.get(tenant)
        need = tenant_need(
            (p.rates.guarantee_mbps for p in ports if p.rates is not None),
            agg.guarantee_mbps if agg else 0,
            has_ports=True,
        )
        if need or agg is not None or any(p.rates for p in ports):
            out[tenant] = need
    return out


def host_qos(host: HostInput) -> HostQos:
    """The document the host's driver enforces."""
    wanted = needs(host)
    ports = []
    members: dict[str, list[str]] = defaultdict(list)
    for p in sorted(host.ports, key=lambda p: p.port_id):
        if p.tenant not in wanted:
            continue
        r = p.rates
        ports.append(
            PortQos(
                port_id=p.port_id,
                mac=p.mac,
                vlan=p.vlan,
                vm=p.vm,
                tenant=p.tenant,
                min_bps=r.guarantee_mbps * MBPS if r else 0,
                max_bps=r.ceiling_mbps * MBPS if r else 0,
                burst_bytes=r.burst_bytes if r else 0,
            )
        )
        members[p.tenant].append(p.port_id)
    tenants = []
    for tenant in sorted(wanted):
        agg = host.aggregates.get(tenant)
        tenants.append(
            TenantQos(
                tenant=tenant,
                min_bps=wanted[tenant] * MBPS,
                max_bps=agg.ceiling_mbps * MBPS if agg else 0,
                port_ids=tuple(members[tenant]),
            )
        )
    return HostQos(
        host=host.host,
        uplink_bps=host.nic_mbps * MBPS,
        ports=tuple(ports),
        tenants=tuple(tenants),
    )


@dataclass(frozen=True)
class VlanClass:
    """One tenant VLAN's share of a ToR uplink."""

    vlan: int
    tenant: str
    guarantee_bps: int


@dataclass(frozen=True)
class TorQos:
    device: str
    uplink_bps: int
    classes: tuple[VlanClass, ...]

    @property
    def guaranteed_bps(self) -> int:
        return sum(c.guarantee_bps for c in self.classes)


def tor_qos(device: str, uplink_mbps: int, hosts: Iterable[HostInput]) -> TorQos:
    """Classes per tenant VLAN below the ToR.

    A port's guarantee counts on its VLAN; what a tenant's aggregate adds above
    its ports' sum on a host is carried by that tenant's lowest VLAN on the host,
    so the classes add up to what admission promised on the uplink.
    """
    per_vlan: dict[tuple[int, str], int] = defaultdict(int)
    for host in hosts:
        wanted = needs(host)
        for tenant, need in wanted.items():
            ports = [p for p in host.ports if p.tenant == tenant]
            by_port = 0
            for p in ports:
                g = p.rates.guarantee_mbps if p.rates else 0
                per_vlan[(p.vlan, tenant)] += g
                by_port += g
            extra = need - by_port
            if extra > 0:
                per_vlan[(min(p.vlan for p in ports), tenant)] += extra
    classes = tuple(
        VlanClass(vlan, tenant, mbps * MBPS)
        for (vlan, tenant), mbps in sorted(per_vlan.items())
        if mbps > 0
    )
    return TorQos(device, uplink_mbps * MBPS, classes)


def rates_of(guarantee_mbps: int, ceiling_mbps: int, burst_bytes: int) -> Rates:
    return Rates(guarantee_mbps, ceiling_mbps, burst_bytes)
