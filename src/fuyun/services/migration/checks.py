"""What a move waits for and checks at the destination: its devices, applied and exact.

``target_devices`` names the desired-state rows that enforce a VM's ports on the
target host (its vswitch, its ToR, or the guest's own iptables, by the module's
enforcement point); ``destination_devices`` adds the host's port map and QoS
document, which a move converges before the VM is touched. ``verify_ports`` is
``fuyun verify`` narrowed to those devices: each must hold, applied, exactly the
policy the intent compiles to for the VM's ports and the address sets they use.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from fuyun.policy.ir import DevicePolicy, from_json, to_json
from fuyun.services.enforcement import device_policies
from fuyun.store.models import DeviceState, Host, Module, Port, Switch


def _names(s: Session, host: Host, vm_id: uuid.UUID) -> tuple[set[str], str]:
    module = s.get(Module, host.module_id)
    tor = s.get(Switch, host.tor_id)
    assert module is not None and tor is not None
    ports = [str(p) for p in s.scalars(select(Port.id).where(Port.vm_id == vm_id))]
    return {host.name, tor.name, *ports}, module.enforcement_point


def target_devices(s: Session, host: Host, vm_id: uuid.UUID) -> list[DeviceState]:
    names, ep = _names(s, host, vm_id)
    return list(
        s.scalars(
            select(DeviceState).where(
                DeviceState.device_name.in_(sorted(names)), DeviceState.enforcement_point == ep
            )
        )
    )


HOST_DOCUMENTS = ("ports", "qos")


def destination_devices(s: Session, host: Host, vm_id: uuid.UUID) -> list[DeviceState]:
    """Everything the destination must run before the VM arrives: the policy devices of
    :func:`target_devices`, and the host's own port map (each port plugged, tagged with
    its VLAN and anti-spoofed) and QoS document (its shaping)."""
    rows = target_devices(s, host, vm_id)
    seen = {r.id for r in rows}
    rows += [
        r
        for r in s.scalars(
            select(DeviceState).where(
                DeviceState.device_type == "host",
                DeviceState.device_name == host.name,
                DeviceState.enforcement_point.in_(HOST_DOCUMENTS),
            )
        )
        if r.id not in seen
    ]
    return rows


def _normal(policy: DevicePolicy) -> DevicePolicy:
    return from_json(to_json(policy))


def verify_ports(s: Session, host: Host, vm_id: uuid.UUID) -> list[str]:
    """Every way the target's devices differ from intent for this VM's ports ([] if none)."""
    ports = set(s.scalars(select(Port.id).where(Port.vm_id == vm_id)))
    names, ep = _names(s, host, vm_id)
    stored = {(r.device_name, r.enforcement_point): r for r in target_devices(s, host, vm_id)}
    problems: list[str] = []
    seen: set[uuid.UUID] = set()
    for _dtype, _flavor, intended in device_policies(s, {host.id}):
        if intended.device not in names or intended.enforcement_point != ep:
            continue
        want = {pp.endpoint.port_id: pp for pp in _normal(intended).ports}
        mine = {p: pp for p, pp in want.items() if p in ports}
        if not mine:
            continue
        row = stored.get((intended.device, intended.enforcement_point))
        if row is None or not row.ir:
            problems.append(f"device {intended.device} has no compiled state")
            continue
        if row.applied_generation < row.desired_generation:
            problems.append(
                f"device {intended.device} runs generation {row.applied_generation} "
                f"of {row.desired_generation}"
            )
        have = from_json(row.ir)
        got = {pp.endpoint.port_id: pp for pp in have.ports}
        for port_id, pp in mine.items():
            seen.add(port_id)
            other = got.get(port_id)
            if other is None:
                problems.append(f"device {intended.device} does not enforce port {port_id}")
            elif (other.ingress, other.egress) != (pp.ingress, pp.egress):
                problems.append(f"device {intended.device} enforces other rules for {port_id}")
        have_sets = have.set_by_name()
        for name, wanted in _normal(intended).set_by_name().items():
            if have_sets.get(name) != wanted:
                problems.append(f"device {intended.device}: address set {name} differs")
    missing = ports - seen
    if missing and not problems:
        problems += [
            f"no device at {host.name} enforces port {p}" for p in sorted(missing, key=str)
        ]
    return problems
