"""What a ToR device enforces beyond its ports, and where its stored IR can be kept.

A ToR that enforces (``tor-acl``, ``vrf``, ``vepa``) carries every port of every host
cabled to it, one trunk per such host and the gateways of its networks. A change
names the hosts it affects; the ToR above them is then patched — those hosts' ports
compiled afresh, every other host's entries kept from its stored document
(:mod:`fuyun.policy.splice`) — and only its device-wide parts are computed again
from the store: VLANs, gateways, trunks.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.domain.enums import EnforcementPoint
from fuyun.fabric.torports import derive
from fuyun.ipam.addresses import to_address, unpack
from fuyun.policy.ir import Gateway, Trunk
from fuyun.store.models import DeviceState, Host, Module, Segment, Subnet, Switch

# Enforcement points whose device is a host or a guest: every other one is a ToR's.
NOT_TOR = (EnforcementPoint.VSWITCH.value, EnforcementPoint.VM_IPTABLES.value)


class Cabled(NamedTuple):
    """A host as its ToR sees it: read as columns, as a change reads up to 50 of them."""

    id: uuid.UUID
    name: str
    tor_id: uuid.UUID
    tor_port: str | None
    module_id: uuid.UUID


def tor_members(s: Session, host_ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Cabled]]:
    """Per ToR that enforces for some of ``host_ids``: every host cabled to it, ports or
    not (each has a trunk in the ToR's configuration), in name order."""
    if not host_ids:
        return {}
    enforcing = set(
        s.scalars(
            select(Host.tor_id)
            .join(Module, Module.id == Host.module_id)
            .where(Host.id.in_(list(host_ids)), Module.enforcement_point.not_in(NOT_TOR))
            .distinct()
        )
    )
    out: dict[uuid.UUID, list[Cabled]] = defaultdict(list)
    if enforcing:
        for row in s.execute(
            select(Host.id, Host.name, Host.tor_id, Host.tor_port, Host.module_id).where(
                Host.tor_id.in_(list(enforcing))
            )
        ):
            out[row.tor_id].append(Cabled(*row))
    for members in out.values():
        members.sort(key=lambda h: h.name)
    return out


def stored_documents(
    s: Session, members: Mapping[str, list[Cabled]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored IR of the ToR devices named in ``members`` (ToR name to the hosts cabled
    to it), by (name, enforcement point), where it can be patched: it shares its rule
    lists and every port entry sits on a host still cabled to that ToR. Any other ToR is
    compiled in full.

    The rows are locked (PostgreSQL; SQLite writers are serial already): two changes
    patching one ToR take turns, and the second patches the first one's document.
    Locked in name order, so two changes over the same ToRs cannot wait on each other."""
    if not members:
        return {}
    out = {}
    for name, ep, ir in s.execute(
        select(DeviceState.device_name, DeviceState.enforcement_point, DeviceState.ir)
        .where(DeviceState.device_type == "switch", DeviceState.device_name.in_(list(members)))
        .order_by(DeviceState.device_name)
        .with_for_update()
    ):
        cabled = {h.name for h in members[name]}
        if ir and "rl" in ir and all(p["host"] in cabled for p in ir["ports"]):
            out[(name, ep)] = ir
    return out


def trunks(tor: Switch, members: list[Cabled], vlans: Mapping[str, set[int]]) -> list[Trunk]:
    """One trunk per host cabled to ``tor`` (``members``, in name order) allowing the
    VLANs of that host's ports. A host the inventory gives no interface gets the one
    its index under the ToR derives, as a fabric file without ``tor_port`` would."""
    derived = derive(
        tor.platform,
        sum(1 for h in members if not h.tor_port),
        {h.tor_port for h in members if h.tor_port},
    )
    return [
        Trunk(h.tor_port or next(derived), h.name, tuple(sorted(vlans.get(h.name, ()))))
        for h in members
    ]


def gateways(s: Session, segment_ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Gateway]]:
    """The gateways of these segments' subnets: a ToR routes them in the tenant VRF."""
    out: dict[uuid.UUID, list[Gateway]] = defaultdict(list)
    if not segment_ids:
        return out
    for segment_id, vlan, vrf_id, cidr, gateway, family in s.execute(
        select(
            Subnet.segment_id,
            Segment.vlan,
            Subnet.vrf_id,
            Subnet.cidr,
            Subnet.gateway,
            Subnet.family,
        )
        .join(Segment, Segment.id == Subnet.segment_id)
        .where(Subnet.segment_id.in_(list(segment_ids)), Subnet.gateway.is_not(None))
    ):
        address = str(to_address(unpack(gateway), family))
        out[segment_id].append(Gateway(vlan, vrf_id, cidr, address))
    return out
