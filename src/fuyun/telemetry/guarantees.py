"""Each VM's promised rates, read from what the store holds today.

This is the one place service quality learns a guarantee, so that moving it onto
QoS policies later changes this function only. Order of evidence:

1. the host's QoS document (device state ``("host", NAME, "qos")``, a
   :class:`~fuyun.domain.qos.HostQos`): the port's ``min_bps``/``max_bps``, summed
   over a VM's ports — what the vswitch is told to enforce;
2. otherwise the VM's own ``bandwidth_mbps`` (from its flavor), which the
   scheduler's NIC-guarantee filter claimed on the host: a guarantee with no
   ceiling.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select

from fuyun.domain.qos import ENFORCEMENT_POINT, HostQos
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Port, Vm
from fuyun.telemetry.quality import Guarantee


def guarantees_for(db: Database, vm_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Guarantee]:
    wanted = set(vm_ids)
    if not wanted:
        return {}
    out: dict[uuid.UUID, Guarantee] = {}
    with db.read_session() as s:
        port_vm = {
            str(pid): vid
            for pid, vid in s.execute(select(Port.id, Port.vm_id).where(Port.vm_id.in_(wanted)))
        }
        sums: dict[uuid.UUID, list[int]] = {}
        docs = s.scalars(
            select(DeviceState.rendered).where(
                DeviceState.device_type == "host",
                DeviceState.enforcement_point == ENFORCEMENT_POINT,
            )
        )
        for rendered in docs:
            try:
                host = HostQos.from_json(rendered)
            except (ValueError, KeyError, TypeError):
                continue
            for p in host.ports:
                vm = port_vm.get(p.port_id)
                if vm is not None:
                    acc = sums.setdefault(vm, [0, 0])
                    acc[0] += p.min_bps
                    acc[1] += p.max_bps
        for vm, (lo, hi) in sums.items():
            out[vm] = Guarantee(lo, hi, "host-qos")
        for vid, mbps in s.execute(select(Vm.id, Vm.bandwidth_mbps).where(Vm.id.in_(wanted))):
            if vid not in out:
                out[vid] = Guarantee(int(mbps or 0) * 1_000_000, 0, "vm-bandwidth")
    return out
