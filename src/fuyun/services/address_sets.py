"""Address sets: each security group's member addresses stored once, devices refer by name.

Why: a rule whose remote side is a group (above all a tenant's ``default`` group,
whose ingress rule refers to itself) used to carry the group's whole member list
in the policy of every device that enforces it, so one VM joining recompiled and
rewrote every such device — work growing with the tenant's size, per VM. As with
Neutron's ipsets and OVN's address sets, the members now live once per (group,
family) in ``address_sets``/``address_set_members``, and a device's stored policy
(its IR and digest) holds only the set's name.

How the data plane still converges — one choice, made here:

- **Sets follow bindings, per host.** :func:`sync_hosts` runs in every
  :func:`fuyun.services.enforcement.recompile`, in the mutation's transaction: the
  member rows of the ports bound to the recompiled hosts (and of ports whose rows
  say they were there) are brought to what ports, groups and allocations say now.
  Every membership change (port created, deleted, bound, unbound, moved, its
  groups or addresses changed) already recompiles the port's host, so the sets
  follow at a cost of that host's ports, not the group's size.
- **Devices are bumped, not rewritten.** A device's references (set names) are
  written when its policy is stored (``device_address_sets``); a set whose
  members changed moves its own generation and bumps ``desired_generation`` of
  every referring device in ONE set-based ``UPDATE``. The device then lags
  (desired > applied) and the reconciler or its agent re-applies it. Agents keep
  tracking one generation per device: no protocol change.
- **Contents are read at apply time.** Whatever renders, applies or analyses a
  device's policy hydrates its sets from the store (:func:`hydrate`,
  :func:`device_text`), so the text applied at generation *g* holds members at
  least as new as *g*'s; a later change bumps again. A reader that forgets to
  hydrate sees the sets as stored in the IR — empty — and a set with no member
  matches nothing: it fails closed (deny), never open.

Devices that refer to a set keep no eagerly rendered text (``rendered`` is empty):
it would go stale with the set; :func:`device_text` renders on read, cached per
(device digest, set generations).
"""

from __future__ import annotations

import hashlib
import uuid
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from ipaddress import ip_address
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fuyun.domain.errors import NotFound
from fuyun.ipam.addresses import to_address, unpack
from fuyun.policy.ir import AddressSet, DevicePolicy, from_json, set_name
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import AddressSet as AddressSetRow
from fuyun.store.models import (
    AddressSetMember,
    DeviceAddressSet,
    DeviceState,
    IpAllocation,
    Port,
    PortSecurityGroup,
    SecurityGroup,
)
from fuyun.store.types import utcnow

_CHUNK = 500  # names per IN list: well under every database's parameter limit
_HOST_CHUNK = 2000  # hosts per member sync
_SKIP_MAX = 1000  # devices a bump leaves out by id; beyond, they move once more


# -- writing: members follow the ports of recompiled hosts ------------------------------


def sync_hosts(s: Session, host_ids: Iterable[uuid.UUID]) -> set[str]:
    """Bring the member rows of these hosts' ports up to date; answer the sets that changed.

    A port counts in its groups' sets while it is bound to a host and holds an
    allocated address. Rows are compared on (set, port, address): a port that moved
    keeps its rows (their ``host_id`` follows) and changes no set. Hosts go in
    chunks (a full recompile names every host): each chunk is correct on its own.
    """
    ordered = sorted(set(host_ids))
    touched: set[str] = set()
    for i in range(0, len(ordered), _HOST_CHUNK):
        touched |= _sync(s, ordered[i : i + _HOST_CHUNK])
    return touched


def _sync(s: Session, hosts: Sequence[uuid.UUID]) -> set[str]:
    if not hosts:
        return set()
    # The ports concerned: bound to these hosts now, or recorded here before (deleted,
    # unbound or moved since). Two indexed look-ups, then everything by port id.
    ports = set(s.scalars(select(Port.id).where(Port.host_id.in_(hosts))))
    ports |= set(
        s.scalars(
            select(AddressSetMember.port_id).where(AddressSetMember.host_id.in_(hosts)).distinct()
        )
    )
    want: dict[tuple[str, uuid.UUID, bytes], tuple[uuid.UUID, uuid.UUID, int]] = {}
    have: dict[tuple[str, uuid.UUID, bytes], uuid.UUID | None] = {}
    for chunk in _chunks(sorted(ports)):
        for group_id, family, port_id, address, host_id in s.execute(
            select(
                PortSecurityGroup.group_id,
                IpAllocation.family,
                PortSecurityGroup.port_id,
                IpAllocation.address,
                Port.host_id,
            )
            .join(Port, Port.id == PortSecurityGroup.port_id)
            .join(IpAllocation, IpAllocation.port_id == PortSecurityGroup.port_id)
            .where(
                PortSecurityGroup.port_id.in_(chunk),
                Port.host_id.is_not(None),
                IpAllocation.state == "allocated",
            )
        ):
            want[(set_name(group_id, family), port_id, address)] = (host_id, group_id, family)
        for name, port_id, address, host_id in s.execute(
            select(
                AddressSetMember.set_name,
                AddressSetMember.port_id,
                AddressSetMember.address,
                AddressSetMember.host_id,
            ).where(AddressSetMember.port_id.in_(chunk))
        ):
            have[(name, port_id, address)] = host_id
    added = [k for k in want if k not in have]
    removed = [k for k in have if k not in want]
    moved = [k for k in want if k in have and have[k] != want[k][0]]
    if added:
        _ensure_sets(s, {k[0]: want[k][1:] for k in added})
        s.execute(
            insert(AddressSetMember),
            [
                {"set_name": n, "port_id": p, "address": a, "host_id": want[(n, p, a)][0]}
                for n, p, a in added
            ],
        )
    conn = s.connection()
    key = (
        (AddressSetMember.set_name == bindparam("k_set"))
        & (AddressSetMember.port_id == bindparam("k_port"))
        & (AddressSetMember.address == bindparam("k_addr"))
    )
    if removed:
        conn.execute(
            delete(AddressSetMember).where(key),
            [{"k_set": n, "k_port": p, "k_addr": a} for n, p, a in removed],
        )
    if moved:
        conn.execute(
            update(AddressSetMember).where(key).values(host_id=bindparam("k_host")),
            [
                {"k_set": n, "k_port": p, "k_addr": a, "k_host": want[(n, p, a)][0]}
                for n, p, a in moved
            ],
        )
    touched = {k[0] for k in (*added, *removed)}
    if touched:
        count = (
            select(func.count())
            .where(AddressSetMember.set_name == AddressSetRow.name)
            .scalar_subquery()
        )
        for names in _chunks(sorted(touched)):
            conn.execute(
                update(AddressSetRow)
                .where(AddressSetRow.name.in_(names))
                .values(generation=AddressSetRow.generation + 1, size=count, updated_at=utcnow())
            )
    return touched


def _ensure_sets(s: Session, needed: dict[str, tuple[uuid.UUID, int]]) -> None:
    """Create the set rows that do not exist yet (a group's first member of a family).

    Two transactions may bring a group its first member at once: the second one's
    insert does nothing (``ON CONFLICT DO NOTHING``) instead of failing the change.
    """
    present: set[str] = set()
    for names in _chunks(sorted(needed)):
        present |= set(s.scalars(select(AddressSetRow.name).where(AddressSetRow.name.in_(names))))
    missing = [n for n in sorted(needed) if n not in present]
    if missing:
        now = utcnow()
        dialect = s.get_bind().dialect.name
        upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        s.execute(
            upsert(AddressSetRow).on_conflict_do_nothing(index_elements=["name"]),
            [
                {
                    "name": n,
                    "group_id": needed[n][0],
                    "family": needed[n][1],
                    "generation": 0,
                    "size": 0,
                    "updated_at": now,
                }
                for n in missing
            ],
        )


def bump_referring(s: Session, names: set[str], *, skip: Iterable[uuid.UUID] = ()) -> None:
    """Every device that refers to one of these sets gets a new desired generation.

    One ``UPDATE`` per (up to 500) set names, whatever the number of devices; the
    devices in ``skip`` were stored anew in this transaction and already moved (past
    a thousand of them they are bumped too: a redundant re-apply, not a wrong one).
    ORM objects loaded earlier keep their old generation in memory (not synchronised:
    finding them would cost what this avoids); a later recompile in the same
    transaction adds one to that, which still lies above what the device applied.
    """
    skipped = list(skip)
    if len(skipped) > _SKIP_MAX:  # a full recompile: one more generation is harmless
        skipped = []
    for chunk in _chunks(sorted(names)):
        refers = select(DeviceAddressSet.device_id).where(DeviceAddressSet.set_name.in_(chunk))
        stmt = (
            update(DeviceState)
            .where(DeviceState.id.in_(refers))
            .values(desired_generation=DeviceState.desired_generation + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if skipped:
            stmt = stmt.where(DeviceState.id.not_in(skipped))
        s.execute(stmt)


def store_references(s: Session, stored: Sequence[tuple[uuid.UUID, DevicePolicy]]) -> None:
    """Record which sets each just-stored device refers to (replacing what it had)."""
    if not stored:
        return
    ids = [device_id for device_id, _ in stored]
    for chunk in _chunks(ids):
        s.execute(delete(DeviceAddressSet).where(DeviceAddressSet.device_id.in_(chunk)))
    rows = [
        {"device_id": device_id, "set_name": name}
        for device_id, policy in stored
        for name in sorted({a.name for a in policy.sets})
    ]
    if rows:
        s.execute(insert(DeviceAddressSet), rows)


def after_recompile(
    s: Session, host_ids: Iterable[uuid.UUID], stored: Sequence[tuple[uuid.UUID, DevicePolicy]]
) -> set[str]:
    """The set side of a recompile: references of stored devices, members, bumps."""
    store_references(s, stored)
    touched = sync_hosts(s, host_ids)
    if touched:
        bump_referring(s, touched, skip=[device_id for device_id, _ in stored])
    return touched


def forget_set_contents(policy: DevicePolicy) -> DevicePolicy:
    """The policy as stored: sets by name and family only, members left to the store."""
    if not policy.sets or not any(a.addresses for a in policy.sets):
        return policy
    return replace(
        policy, sets=tuple(AddressSet(a.name, a.family, frozenset()) for a in policy.sets)
    )


# -- reading: hydrate a device's sets from the store ------------------------------------


def contents(s: Session, names: Iterable[str]) -> dict[str, frozenset[str]]:
    """The members of each named set that exists (absent: no member yet)."""
    found: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(sorted(set(names))):
        for name, family, address in s.execute(
            select(AddressSetRow.name, AddressSetRow.family, AddressSetMember.address)
            .join(AddressSetMember, AddressSetMember.set_name == AddressSetRow.name)
            .where(AddressSetRow.name.in_(chunk))
        ):
            found[name].add(str(to_address(unpack(address), family)))
    return {k: frozenset(v) for k, v in found.items()}


def hydrate_all(s: Session, policies: Sequence[DevicePolicy]) -> list[DevicePolicy]:
    """These policies with every set's members as stored now (one query per 500 sets)."""
    names = {a.name for p in policies for a in p.sets}
    if not names:
        return list(policies)
    members = contents(s, names)
    return [
        replace(
            p,
            sets=tuple(
                AddressSet(a.name, a.family, members.get(a.name, frozenset())) for a in p.sets
            ),
        )
        if p.sets
        else p
        for p in policies
    ]


def hydrate(s: Session, policy: DevicePolicy) -> DevicePolicy:
    return hydrate_all(s, [policy])[0]


def generations(s: Session, names: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(sorted(set(names))):
        for name, generation in s.execute(
            select(AddressSetRow.name, AddressSetRow.generation).where(
                AddressSetRow.name.in_(chunk)
            )
        ):
            out[name] = generation
    return out


_CACHE_SIZE = 256
_texts: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[object, ...], str]] = (
    weakref.WeakKeyDictionary()
)


def device_text(
    s: Session, rendered: str, ir: dict[str, Any] | None, flavor: str, digest: str = ""
) -> str:
    """A device's configuration text with its sets' current members.

    As stored when the device refers to no set (and for documents that are not
    policy: ports maps, QoS); otherwise rendered now from the IR with the sets
    hydrated. Cached per database by (digest, flavor, each set's generation): an agent
    asking every half second for an unchanged host does not re-render it.
    """
    if rendered or not ir:
        return rendered
    from fuyun.services.enforcement import render  # enforcement calls into this module

    policy = from_json(ir)
    if not policy.sets:
        return render(policy, flavor)
    names = sorted({a.name for a in policy.sets})
    gens = generations(s, names)
    if not digest:
        digest = hashlib.sha256(repr(sorted(ir.items())).encode()).hexdigest()
    key = (digest, flavor, tuple((n, gens.get(n, 0)) for n in names))
    cache = _texts.setdefault(s.get_bind(), OrderedDict())
    text = cache.get(key)
    if text is None:
        text = render(hydrate(s, policy), flavor)
        cache[key] = text
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return text


def stored_policy(s: Session, ir: dict[str, Any]) -> DevicePolicy:
    """A device's stored IR as a policy, sets hydrated: what verify and tools analyse."""
    return hydrate(s, from_json(ir))


# -- what operators and tenants see -------------------------------------------------------


@dataclass(frozen=True)
class SetView:
    """One set as the API shows it: its version, size, the devices that refer to it and
    (on request) its members."""

    name: str
    group_id: uuid.UUID
    tenant_id: uuid.UUID
    family: int
    generation: int
    size: int
    updated_at: datetime
    devices: int
    addresses: tuple[str, ...] | None = None


def list_sets(
    db: Database,
    principal: Principal,
    *,
    group_id: uuid.UUID | None = None,
    name: str | None = None,
    members: bool = False,
) -> list[SetView]:
    """The sets the caller may see (a tenant: its groups'), by group or name."""
    with db.read_session() as s:
        refs = (
            select(func.count())
            .where(DeviceAddressSet.set_name == AddressSetRow.name)
            .scalar_subquery()
        )
        stmt = (
            select(AddressSetRow, SecurityGroup.tenant_id, refs)
            .join(SecurityGroup, SecurityGroup.id == AddressSetRow.group_id)
            .order_by(AddressSetRow.group_id, AddressSetRow.family)
        )
        if group_id is not None:
            stmt = stmt.where(AddressSetRow.group_id == group_id)
        if name is not None:
            stmt = stmt.where(AddressSetRow.name == name)
        rows = [
            (row, tenant_id, devices)
            for row, tenant_id, devices in s.execute(stmt)
            if principal.may_see_tenant(tenant_id)
        ]
        found = contents(s, [r.name for r, _, _ in rows]) if members else {}
        return [
            SetView(
                row.name,
                row.group_id,
                tenant_id,
                row.family,
                row.generation,
                row.size,
                row.updated_at,
                int(devices),
                tuple(sorted(found.get(row.name, ()), key=ip_address)) if members else None,
            )
            for row, tenant_id, devices in rows
        ]


def get_set(db: Database, principal: Principal, name: str) -> SetView:
    found = list_sets(db, principal, name=name, members=True)
    if not found:
        raise NotFound("no such address set", field="name")
    return found[0]


# -- the intent, for checks and repair ----------------------------------------------------


def members_from_intent(s: Session, groups: Iterable[uuid.UUID]) -> dict[str, frozenset[str]]:
    """Every set of these groups as ports, groups and allocations say now (the full
    derivation the stored rows must equal; O(members), for checks and repair only)."""
    wanted = list(set(groups))
    out: dict[str, set[str]] = defaultdict(set)
    if not wanted:
        return {}
    for chunk in _chunks(wanted):
        for group_id, address, family in s.execute(
            select(PortSecurityGroup.group_id, IpAllocation.address, IpAllocation.family)
            .join(IpAllocation, IpAllocation.port_id == PortSecurityGroup.port_id)
            .join(Port, Port.id == PortSecurityGroup.port_id)
            .where(
                PortSecurityGroup.group_id.in_(chunk),
                IpAllocation.state == "allocated",
                Port.host_id.is_not(None),
            )
        ):
            out[set_name(group_id, family)].add(str(to_address(unpack(address), family)))
    return {k: frozenset(v) for k, v in out.items()}


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
