"""Publishing each host's port map (:class:`~fuyun.domain.hostports.HostPorts`).

Whatever binds, unbinds or moves a port calls :func:`publish_host_ports` with the
hosts it touched, inside its own transaction, so the port map a host's switch
must enforce moves together with the intent. The document is rebuilt from the
store (never patched), and its generation moves only when its content changes:
publishing an unchanged host is free downstream.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, load_only

from fuyun.domain.hostports import ENFORCEMENT_POINT, HostPorts, PortBinding
from fuyun.ipam.addresses import to_address, unpack
from fuyun.store.models import DeviceState, Host, IpAllocation, Network, Port, Segment, Tenant, Vm
from fuyun.store.types import utcnow


def host_ports(s: Session, host: Host) -> HostPorts:
    """The port map of ``host`` as the store says it now."""
    return host_ports_many(s, [host])[host.id]


def host_ports_many(s: Session, hosts: list[Host]) -> dict[uuid.UUID, HostPorts]:
    """The port maps of ``hosts`` in two queries, whatever their number (columns only)."""
    ids = [h.id for h in hosts]
    rows = s.execute(
        select(
            Port.id,
            Port.vm_id,
            Port.mac,
            Port.host_id,
            Port.peer_host_id,
            Segment.vlan,
            Network.name,
            Tenant.name,
            Vm.name,
        )
        .join(Segment, Segment.id == Port.segment_id)
        .join(Network, Network.id == Port.network_id)
        .join(Tenant, Tenant.id == Port.tenant_id)
        .outerjoin(Vm, Vm.id == Port.vm_id)
        # A port moving here is already plugged here (tagged, anti-spoofed) before the
        # VM arrives: the destination of a live migration holds it as its peer host.
        .where(or_(Port.host_id.in_(ids), Port.peer_host_id.in_(ids)))
    ).all()
    ips: dict[uuid.UUID, list[str]] = {}
    if rows:
        for port_id, address, family in s.execute(
            select(IpAllocation.port_id, IpAllocation.address, IpAllocation.family)
            .where(
                IpAllocation.port_id.in_([r[0] for r in rows]),
                IpAllocation.state == "allocated",
            )
            .order_by(IpAllocation.family, IpAllocation.address)
        ):
            ips.setdefault(port_id, []).append(str(to_address(unpack(address), family)))
    per_host: dict[uuid.UUID, list[PortBinding]] = {h: [] for h in ids}
    for port_id, vm_id, mac, host_id, peer_id, vlan, network, tenant, vm_name in rows:
        binding = PortBinding(
            port_id=str(port_id),
            vm_id=str(vm_id) if vm_id else "",
            vm=vm_name or "",
            tenant=tenant,
            network=network,
            vlan=vlan,
            mac=mac,
            ips=tuple(ips.get(port_id, ())),
        )
        for h in {host_id, peer_id}:
            if h in per_host:
                per_host[h].append(binding)
    return {
        h.id: HostPorts(host=h.name, ports=tuple(sorted(per_host[h.id], key=lambda b: b.port_id)))
        for h in hosts
    }


def publish_host_ports(s: Session, host_ids: Iterable[uuid.UUID | None]) -> int:
    """Store each host's current port map as its ``ports`` desired state; answers how
    many documents changed (a new generation each)."""
    wanted = {h for h in host_ids if h is not None}
    if not wanted:
        return 0
    s.flush()
    hosts = list(s.scalars(select(Host).where(Host.id.in_(list(wanted)))))
    existing = {
        d.device_name: d
        # Without the documents: the digest decides, and the text is only overwritten.
        for d in s.scalars(
            select(DeviceState)
            .options(
                load_only(
                    DeviceState.device_name, DeviceState.digest, DeviceState.desired_generation
                )
            )
            .where(
                DeviceState.device_type == "host",
                DeviceState.enforcement_point == ENFORCEMENT_POINT,
                DeviceState.device_name.in_([h.name for h in hosts]),
            )
        )
    }
    changed = 0
    maps = host_ports_many(s, hosts)
    for host in hosts:
        text = maps[host.id].to_json()
        digest = hashlib.sha256(text.encode()).hexdigest()
        row = existing.get(host.name)
        if row is not None and row.digest == digest:
            continue
        if row is None:
            row = DeviceState(
                device_type="host",
                device_name=host.name,
                enforcement_point=ENFORCEMENT_POINT,
                flavor=host.vswitch,
                desired_generation=0,
                applied_generation=0,
            )
            s.add(row)
        row.ir, row.rendered, row.digest = {}, text, digest
        row.desired_generation = (row.desired_generation or 0) + 1
        row.updated_at = utcnow()
        changed += 1
    s.flush()
    return changed
