"""The drift rules, as a pure comparison of store rows with observed instances."""

from __future__ import annotations

import uuid

from fuyun.drivers.compute import InstanceStatus
from fuyun.drivers.compute.base import PowerState
from fuyun.services.drift import DriftKind, compare
from fuyun.store.models import Vm


def _vm(state: str) -> Vm:
    return Vm(id=uuid.uuid4(), name=f"vm-{state}", state=state, vcpus=1, ram_mb=512, disk_gb=1)


def _seen(vm: Vm, power: PowerState) -> InstanceStatus:
    return InstanceStatus(vm.id, "h", power, 1, 512)


def test_every_kind_of_drift_and_none_where_they_agree() -> None:
    ok_active, ok_stopped = _vm("active"), _vm("stopped")
    died, woke, gone = _vm("active"), _vm("stopped"), _vm("stopped")
    busy = _vm("building")  # a workflow owns it: not judged
    stray = uuid.uuid4()
    observed = [
        _seen(ok_active, PowerState.RUNNING),
        _seen(ok_stopped, PowerState.STOPPED),
        _seen(died, PowerState.STOPPED),
        _seen(woke, PowerState.RUNNING),
        InstanceStatus(stray, "h", PowerState.RUNNING, 2, 2048),
    ]
    found = {
        d.vm_id: d for d in compare("h", [ok_active, ok_stopped, died, woke, gone, busy], observed)
    }
    assert {k: d.kind for k, d in found.items()} == {
        died.id: DriftKind.DIED,
        woke.id: DriftKind.UNEXPECTED_RUNNING,
        gone.id: DriftKind.MISSING,
        stray: DriftKind.UNKNOWN,
    }
    assert found[gone.id].observed is None and found[gone.id].actions == ("repair",)
    assert (found[stray].store_state, found[stray].vcpus, found[stray].ram_mb) == (None, 2, 2048)
    assert found[died.id].actions == ("repair", "adopt")
