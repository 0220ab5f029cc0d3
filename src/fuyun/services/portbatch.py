"""Many bound ports of one network at once: the NICs of a batch of new VMs.

What :func:`fuyun.services.ports.open_port` does for one port, done for a batch in a
handful of statements: a run of the lowest free addresses per subnet, one quota
claim, the port, address and group-membership rows as multi-row inserts, and the
switch tables claimed once per switch with the summed deltas. The guarantees are
the same — the unique indexes on MAC and (VRF, address) are the real guard, the
conditional ``UPDATE`` refuses a table overflow, everything stays in the caller's
transaction. Whatever the fast path cannot do (dual stack, an address from
quarantine, growing the network) falls back to ``open_port``, one port at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.errors import Conflict
from fuyun.ipam.addresses import pack
from fuyun.ipam.macs import check_oui, random_mac
from fuyun.services import addressing, l2fabric, quotas
from fuyun.services.metrics import conflict_retried
from fuyun.services.policy import ensure_default_group
from fuyun.services.ports import open_port
from fuyun.store.models import (
    Host,
    IpAllocation,
    Module,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    Segment,
    Subnet,
)

MAC_RETRIES = 16


@dataclass(frozen=True)
class Binding:
    """One port to open: the VM it belongs to, its name and the host it runs on."""

    vm_id: uuid.UUID
    name: str
    host: Host


def open_ports(
    s: Session,
    settings: Settings,
    network: Network,
    bindings: list[Binding],
    *,
    groups: list[SecurityGroup] | None = None,
    qos_policy_id: uuid.UUID | None = None,
) -> set[uuid.UUID]:
    """Open one port of ``network`` per binding, in the caller's transaction.

    Answers the security groups the ports joined (the same for all), so that the
    caller finds the hosts whose policy depends on them once for the whole batch.
    The caller holds the network's row lock (see ``open_port`` for the lock order).
    """
    chosen = groups if groups is not None else [ensure_default_group(s, network.tenant_id)]
    group_ids = {g.id for g in chosen}
    subnets = list(
        s.scalars(
            select(Subnet)
            .join(Segment, Segment.id == Subnet.segment_id)
            .where(Subnet.network_id == network.id)
            .order_by(Segment.index, Subnet.created_at, Subnet.first)
        )
    )
    fast = len({sub.family for sub in subnets}) == 1 and all(
        b.host.module_id == network.module_id for b in bindings
    )
    rest = list(bindings)
    if fast:
        module = s.get(Module, network.module_id)
        assert module is not None
        for sub in subnets:
            if not rest:
                break
            addresses = addressing.take_run(s, sub, len(rest))
            if not addresses:
                continue
            chunk, rest = rest[: len(addresses)], rest[len(addresses) :]
            _open_chunk(
                s, settings, network, module, sub, chunk, addresses, group_ids, qos_policy_id
            )
        network.generation += 1
    for b in rest:  # the slow path: growth, quarantine reuse, dual stack, other modules
        view = open_port(
            s, settings, network, name=b.name, host=b.host, vm_id=b.vm_id, groups=chosen
        )
        if qos_policy_id is not None:
            s.get_one(Port, view.id).qos_policy_id = qos_policy_id
    s.flush()
    return group_ids


def _open_chunk(
    s: Session,
    settings: Settings,
    network: Network,
    module: Module,
    sub: Subnet,
    chunk: list[Binding],
    addresses: list[int],
    group_ids: set[uuid.UUID],
    qos_policy_id: uuid.UUID | None,
) -> None:
    """Ports for ``chunk`` with one address each from ``sub``: rows in bulk, tables once."""
    quotas.claim(s, network.tenant_id, ips=len(chunk))
    port_ids = _insert_ports(s, settings, network, sub.segment_id, chunk, qos_policy_id)
    s.execute(
        insert(IpAllocation.__table__),
        [
            {
                "vrf_id": sub.vrf_id,
                "subnet_id": sub.id,
                "address": pack(a),
                "family": sub.family,
                "port_id": pid,
                "state": addressing.ALLOCATED,
            }
            for pid, a in zip(port_ids, addresses, strict=True)
        ],
    )
    s.execute(
        insert(PortSecurityGroup.__table__),
        [{"port_id": pid, "group_id": g} for pid in port_ids for g in sorted(group_ids)],
    )
    segment = s.get(Segment, sub.segment_id)
    assert segment is not None
    l2fabric.bind_many(s, segment, module, [(b.host.tor_id, 1) for b in chunk])


def _insert_ports(
    s: Session,
    settings: Settings,
    network: Network,
    segment_id: uuid.UUID,
    chunk: list[Binding],
    qos_policy_id: uuid.UUID | None,
) -> list[uuid.UUID]:
    """Port rows with random MACs in one insert; on a MAC collision, the batch again.

    MACs are 24 random bits under one OUI, so collisions are routine at scale: a
    batch of 500 among 100,000 ports meets one about three times in four. Only the
    colliding rows (with a port already stored, or with each other) draw new MACs,
    and the batch is inserted again as one statement.
    """
    oui = check_oui(settings.mac_oui)
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": network.tenant_id,
            "network_id": network.id,
            "segment_id": segment_id,
            "vm_id": b.vm_id,
            "host_id": b.host.id,
            "name": b.name,
            "mac": random_mac(oui),
            "qos_policy_id": qos_policy_id,
        }
        for b in chunk
    ]
    for _ in range(MAC_RETRIES):
        try:
            with s.begin_nested():
                s.execute(insert(Port.__table__), rows)
            return [r["id"] for r in rows]
        except IntegrityError:
            taken = set(s.scalars(select(Port.mac).where(Port.mac.in_([r["mac"] for r in rows]))))
            if not taken and len({r["mac"] for r in rows}) == len(rows):
                raise  # not a MAC: the caller's transaction fails with the real cause
            conflict_retried("mac")
        seen: set[str] = set()
        for row in rows:
            while row["mac"] in taken or row["mac"] in seen:
                row["mac"] = random_mac(oui)
            seen.add(row["mac"])
    raise Conflict("could not find free MACs; retry", field="mac")
