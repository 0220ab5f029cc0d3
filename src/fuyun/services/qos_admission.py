"""Admission control for bandwidth guarantees, and compiling QoS per enforcement point.

What a tenant needs on a host is recomputed from the ports bound there *now*
(:func:`fuyun.qos.admission.tenant_need`), never tracked per event, so every
change — a policy attached or edited, a port opened or closed, a VM created,
deleted or moved — goes through :func:`admit` with the (tenant, host) pairs it
touched. :func:`admit` moves three counters by the difference from what was
admitted before (``qos_claims``), each with a conditional ``UPDATE`` in the
caller's transaction:

- the tenant's ``bandwidth_mbps`` quota,
- the host uplink (``hosts.used_bandwidth_mbps <= nic_mbps``; flavor bandwidth
  is counted there too),
- the ToR uplink (``switches.used_bandwidth_mbps <= uplink_mbps``).

The hosts' rows are locked first, in id order, before anything is read, so two
transactions admitting on the same host queue instead of both reading the old
sum; the conditional updates are the final guard. A refusal raises
:class:`CapacityExhausted` naming the link, and the caller's transaction rolls
back whole. Because sums follow ``ports.host_id``, a guarantee moves with a port:
:func:`move_ports` re-binds ports to another host and re-admits both sides.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from fuyun.domain.errors import CapacityExhausted, Conflict
from fuyun.domain.qos import ENFORCEMENT_POINT
from fuyun.qos import render as tor_render
from fuyun.qos.admission import Link
from fuyun.qos.compile import host_qos, needs, tor_qos
from fuyun.qos.model import HostInput, PortRow, Rates
from fuyun.services import quotas
from fuyun.store.models import (
    DeviceState,
    Host,
    Port,
    QosClaim,
    QosPolicy,
    Segment,
    Switch,
    Tenant,
    TenantQos,
    Vm,
)
from fuyun.store.types import utcnow

Pair = tuple[uuid.UUID, uuid.UUID]  # (tenant id, host id)


def _rates(p: QosPolicy | None) -> Rates | None:
    return None if p is None else Rates(p.guarantee_mbps, p.ceiling_mbps, p.burst_bytes)


def host_inputs(s: Session, host_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, HostInput]:
    """The QoS compiler's view of these hosts (every port), in a handful of queries."""
    ids = sorted(set(host_ids))
    if not ids:
        return {}
    hosts = {h.id: h for h in s.scalars(select(Host).where(Host.id.in_(ids)).order_by(Host.id))}
    tors = dict(
        s.execute(
            select(Switch.id, Switch.name).where(Switch.id.in_({h.tor_id for h in hosts.values()}))
        ).all()
    )
    rows = s.execute(
        select(Port, Segment.vlan, Tenant.name, Vm.name, QosPolicy)
        .join(Segment, Segment.id == Port.segment_id)
        .join(Tenant, Tenant.id == Port.tenant_id)
        .outerjoin(Vm, Vm.id == Port.vm_id)
        .outerjoin(QosPolicy, QosPolicy.id == Port.qos_policy_id)
        # A port moving here is shaped here before the VM arrives, as it is plugged
        # (the port map): the destination of a live migration holds it as its peer.
        .where(or_(Port.host_id.in_(ids), Port.peer_host_id.in_(ids)))
    ).all()
    aggregates = _aggregates(s, {p.tenant_id for p, *_ in rows})
    ports: dict[uuid.UUID, list[PortRow]] = defaultdict(list)
    for port, vlan, tenant, vm, policy in rows:
        row = PortRow(str(port.id), port.mac, vlan, vm or "", tenant, _rates(policy))
        for host_id in {port.host_id, port.peer_host_id} & set(ids):
            ports[host_id].append(row)
    return {
        h.id: HostInput(
            h.name,
            tors.get(h.tor_id, ""),
            h.nic_mbps,
            tuple(ports.get(h.id, ())),
            {p.tenant: aggregates[p.tenant] for p in ports.get(h.id, ()) if p.tenant in aggregates},
        )
        for h in hosts.values()
    }


def _aggregates(s: Session, tenant_ids: Iterable[uuid.UUID]) -> dict[str, Rates]:
    ids = list(set(tenant_ids))
    if not ids:
        return {}
    return {
        name: Rates(g, c, b)
        for name, g, c, b in s.execute(
            select(
                Tenant.name,
                QosPolicy.guarantee_mbps,
                QosPolicy.ceiling_mbps,
                QosPolicy.burst_bytes,
            )
            .join(TenantQos, TenantQos.tenant_id == Tenant.id)
            .join(QosPolicy, QosPolicy.id == TenantQos.policy_id)
            .where(Tenant.id.in_(ids))
        )
    }


def sum_inputs(s: Session, hosts: dict[uuid.UUID, tuple[str, int]]) -> dict[uuid.UUID, HostInput]:
    """What admission and the ToR classes need, summed in SQL per (host, tenant, VLAN).

    Each row stands for the ports of one tenant on one VLAN of a host: ``rates`` is
    their summed guarantee when any of them has a policy, else None — which is all
    :func:`fuyun.qos.compile.needs` and :func:`~fuyun.qos.compile.tor_qos` look at.
    One grouped query whatever the number of ports (``hosts``: id -> (name, NIC Mbit/s)).
    """
    if not hosts:
        return {}
    rows: dict[uuid.UUID, list[PortRow]] = defaultdict(list)
    tenant_ids = set()
    for host_id, tenant_id, tenant, vlan, total, shaped in s.execute(
        select(
            Port.host_id,
            Port.tenant_id,
            Tenant.name,
            Segment.vlan,
            func.coalesce(func.sum(QosPolicy.guarantee_mbps), 0),
            func.count(QosPolicy.id),
        )
        .join(Segment, Segment.id == Port.segment_id)
        .join(Tenant, Tenant.id == Port.tenant_id)
        .outerjoin(QosPolicy, QosPolicy.id == Port.qos_policy_id)
        .where(Port.host_id.in_(list(hosts)))
        .group_by(Port.host_id, Port.tenant_id, Tenant.name, Segment.vlan)
    ):
        tenant_ids.add(tenant_id)
        rates = Rates(int(total), 0) if shaped else None
        rows[host_id].append(PortRow("", "", vlan, "", tenant, rates))
    aggregates = _aggregates(s, tenant_ids)
    return {
        h: HostInput(
            name,
            "",
            nic,
            tuple(rows.get(h, ())),
            {p.tenant: aggregates[p.tenant] for p in rows.get(h, ()) if p.tenant in aggregates},
        )
        for h, (name, nic) in hosts.items()
    }


@dataclass(frozen=True)
class _Locked:
    id: uuid.UUID
    name: str
    tor_id: uuid.UUID
    nic_mbps: int


def _lock_hosts(s: Session, host_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, _Locked]:
    ids = sorted(set(host_ids))
    return {
        row[0]: _Locked(*row)
        for row in s.execute(
            select(Host.id, Host.name, Host.tor_id, Host.nic_mbps)
            .where(Host.id.in_(ids))
            .order_by(Host.id)
            .with_for_update()
        )
    }


def admit(s: Session, pairs: Iterable[Pair], *, field: str = "qos_policy") -> dict[Pair, int]:
    """Bring what is admitted for each (tenant, host) to what its bound ports need now.

    Answers the change in Mbit/s per pair. Raises CapacityExhausted (409,
    ``admission_refused``) naming the host or ToR uplink that cannot take it,
    Conflict when a tenant's guarantees on a host exceed its aggregate ceiling,
    and QuotaExceeded when the tenant's guaranteed bandwidth quota is spent.
    """
    pairs = sorted(set(pairs))
    if not pairs:
        return {}
    hosts = _lock_hosts(s, (h for _, h in pairs))
    inputs = sum_inputs(s, {h.id: (h.name, h.nic_mbps) for h in hosts.values()})
    tenant_names = dict(
        s.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_({t for t, _ in pairs}))).all()
    )
    changes: dict[Pair, int] = {}
    for tenant_id, host_id in pairs:
        host = hosts.get(host_id)
        if host is None:
            continue
        tenant = tenant_names.get(tenant_id, "")
        inp = inputs[host_id]
        need = needs(inp).get(tenant, 0)
        agg = inp.aggregates.get(tenant)
        if agg is not None and need > agg.ceiling_mbps:
            raise Conflict(
                f"guarantees of tenant {tenant} on host {host.name} would be {need} Mbit/s,"
                f" above its aggregate ceiling of {agg.ceiling_mbps} Mbit/s",
                field=field,
                code="admission_refused",
            )
        claim = s.get(QosClaim, (host_id, tenant_id))
        have = claim.guaranteed_mbps if claim is not None else 0
        delta = need - have
        if delta == 0:
            continue
        quotas.claim(s, tenant_id, bandwidth_mbps=delta)
        _move_host(s, host, delta, field)
        old_tor = claim.tor_id if claim is not None else host.tor_id
        if old_tor != host.tor_id:  # the host was re-cabled: move the whole claim
            _move_tor(s, old_tor, -have, field)
            _move_tor(s, host.tor_id, need, field)
        else:
            _move_tor(s, host.tor_id, delta, field)
        if need == 0:
            s.execute(
                delete(QosClaim).where(QosClaim.host_id == host_id, QosClaim.tenant_id == tenant_id)
            )
            if claim is not None:
                s.expunge(claim)
        elif claim is None:
            s.add(
                QosClaim(
                    host_id=host_id, tenant_id=tenant_id, tor_id=host.tor_id, guaranteed_mbps=need
                )
            )
        else:
            claim.guaranteed_mbps, claim.tor_id = need, host.tor_id
        changes[(tenant_id, host_id)] = delta
    s.flush()
    return changes


def _move_host(s: Session, host: _Locked, delta: int, field: str) -> None:
    stmt = update(Host).where(Host.id == host.id)
    if delta > 0:
        stmt = stmt.where(Host.used_bandwidth_mbps + delta <= Host.nic_mbps)
    result = s.execute(
        stmt.values(used_bandwidth_mbps=Host.used_bandwidth_mbps + delta).execution_options(
            synchronize_session=False
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        used, cap = s.execute(
            select(Host.used_bandwidth_mbps, Host.nic_mbps).where(Host.id == host.id)
        ).one()
        raise CapacityExhausted(
            Link("host uplink", host.name, cap, used).refusal(delta),
            field=field,
            code="admission_refused",
        )


def _move_tor(s: Session, tor_id: uuid.UUID, delta: int, field: str) -> None:
    if delta == 0:
        return
    stmt = update(Switch).where(Switch.id == tor_id)
    if delta > 0:
        stmt = stmt.where(Switch.used_bandwidth_mbps + delta <= Switch.uplink_mbps)
    result = s.execute(
        stmt.values(used_bandwidth_mbps=Switch.used_bandwidth_mbps + delta).execution_options(
            synchronize_session=False
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        name, used, cap = s.execute(
            select(Switch.name, Switch.used_bandwidth_mbps, Switch.uplink_mbps).where(
                Switch.id == tor_id
            )
        ).one()
        raise CapacityExhausted(
            Link("ToR uplink", name, cap, used).refusal(delta),
            field=field,
            code="admission_refused",
        )


def pairs_of_ports(s: Session, port_ids: Iterable[uuid.UUID]) -> set[Pair]:
    ids = list(set(port_ids))
    if not ids:
        return set()
    return {
        (t, h)
        for t, h in s.execute(
            select(Port.tenant_id, Port.host_id).where(Port.id.in_(ids), Port.host_id.is_not(None))
        )
    }


def pairs_of_tenant(s: Session, tenant_id: uuid.UUID) -> set[Pair]:
    """Every host the tenant has a bound port on, or an admitted guarantee."""
    bound = s.execute(
        select(Port.tenant_id, Port.host_id)
        .where(Port.tenant_id == tenant_id, Port.host_id.is_not(None))
        .distinct()
    )
    claimed = s.execute(
        select(QosClaim.tenant_id, QosClaim.host_id).where(QosClaim.tenant_id == tenant_id)
    )
    return {(t, h) for t, h in bound} | {(t, h) for t, h in claimed}


def move_ports(
    s: Session, port_ids: Iterable[uuid.UUID], dest_host_id: uuid.UUID, *, field: str = "host"
) -> set[uuid.UUID]:
    """Re-bind ports to ``dest_host_id`` carrying their guarantees, in the caller's transaction.

    The source hosts give the guarantees back and the destination admits them
    (refused with CapacityExhausted if its host or ToR uplink cannot take them);
    both hosts' and ToRs' QoS documents are recompiled. Answers the hosts touched.
    Only the QoS side of a move: switch tables and VLAN spans are the caller's.
    """
    ports = list(s.scalars(select(Port).where(Port.id.in_(list(set(port_ids))))))
    pairs = {(p.tenant_id, p.host_id) for p in ports if p.host_id is not None}
    for p in ports:
        p.host_id = dest_host_id
        pairs.add((p.tenant_id, dest_host_id))
    s.flush()
    admit(s, pairs, field=field)
    hosts = {h for _, h in pairs}
    compile_hosts(s, hosts)
    return hosts


# -- compiling ------------------------------------------------------------------------


def _store(
    s: Session, dtype: str, name: str, flavor: str, ir: dict[str, object], text: str
) -> bool:
    digest = hashlib.sha256(json.dumps(ir, sort_keys=True).encode()).hexdigest()
    row = s.scalar(
        select(DeviceState).where(
            DeviceState.device_type == dtype,
            DeviceState.device_name == name,
            DeviceState.enforcement_point == ENFORCEMENT_POINT,
        )
    )
    if row is not None and row.digest == digest:
        return False
    if row is None:
        row = DeviceState(
            device_type=dtype,
            device_name=name,
            enforcement_point=ENFORCEMENT_POINT,
            flavor=flavor,
            desired_generation=0,
            applied_generation=0,
        )
        s.add(row)
    row.ir, row.digest, row.flavor, row.rendered = ir, digest, flavor, text
    row.desired_generation = (row.desired_generation or 0) + 1
    row.updated_at = utcnow()
    return True


def compile_hosts(s: Session, host_ids: Iterable[uuid.UUID]) -> int:
    """Recompile the QoS documents of these hosts and of their ToRs; answers how many changed.

    A document's generation moves only when its content changed.
    """
    ids = set(host_ids)
    if not ids:
        return 0
    inputs = host_inputs(s, ids)
    hosts = {h.id: h for h in s.scalars(select(Host).where(Host.id.in_(ids)))}
    changed = 0
    for host_id, inp in sorted(inputs.items(), key=lambda kv: kv[1].host):
        doc = host_qos(inp)
        text = doc.to_json()
        changed += _store(s, "host", inp.host, hosts[host_id].vswitch, json.loads(text), text)
    for tor in s.scalars(
        select(Switch)
        .where(Switch.id.in_({h.tor_id for h in hosts.values()}))
        .order_by(Switch.name)
    ):
        below = sum_inputs(
            s,
            {
                h: (name, nic)
                for h, name, nic in s.execute(
                    select(Host.id, Host.name, Host.nic_mbps).where(Host.tor_id == tor.id)
                )
            },
        )
        compiled = tor_qos(tor.name, tor.uplink_mbps, below.values())
        ir = {
            "device": compiled.device,
            "uplink_bps": compiled.uplink_bps,
            "classes": [[c.vlan, c.tenant, c.guarantee_bps] for c in compiled.classes],
        }
        # Never empty: a platform without a QoS dialect gets the classes as JSON (an empty
        # text would be taken for security IR still to be printed).
        text = tor_render.render(compiled, tor.platform) or json.dumps(ir, sort_keys=True)
        changed += _store(s, "switch", tor.name, tor.platform, ir, text)
    s.flush()
    return changed


def settle(s: Session, pairs: Iterable[Pair], *, field: str = "qos_policy") -> None:
    """Admit the pairs and recompile their hosts: what every QoS-relevant change ends with."""
    pairs = set(pairs)
    admit(s, pairs, field=field)
    compile_hosts(s, {h for _, h in pairs})


def hosts_holding_qos(s: Session, tenant_id: uuid.UUID, host_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """:func:`holds_qos` for many hosts of one tenant, in two lookups."""
    if not host_ids:
        return set()
    if s.get(TenantQos, tenant_id) is not None:
        return set(host_ids)
    return set(
        s.scalars(
            select(QosClaim.host_id).where(
                QosClaim.tenant_id == tenant_id, QosClaim.host_id.in_(list(host_ids))
            )
        )
    )


def holds_qos(s: Session, tenant_id: uuid.UUID, host_id: uuid.UUID) -> bool:
    """Whether the tenant has an admitted guarantee on the host, or an aggregate anywhere."""
    return (
        s.get(QosClaim, (host_id, tenant_id)) is not None or s.get(TenantQos, tenant_id) is not None
    )
