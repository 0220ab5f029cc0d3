"""A member joining a group reaches the wire on the hosts that refer to the group's set,
though their policy is not recompiled: the agent re-applies them with the new member."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fuyun.store.models import DeviceState
from tests.support.labworld import LabWorld


def _lag(lab: LabWorld, host: str) -> tuple[str, int, int]:
    with lab.db.read_session() as s:
        row = s.scalar(
            select(DeviceState).where(
                DeviceState.device_name == host, DeviceState.enforcement_point == "vswitch"
            )
        )
        assert row is not None
        return row.digest, row.desired_generation, row.applied_generation


@pytest.mark.slow
def test_a_new_member_is_let_in_once_the_referring_host_converges(lab: LabWorld) -> None:
    t = lab.tenant("as-acme", "10.49.0.0/24")
    first = lab.vm(t, "first", lab.hosts[0])  # the tenant's default group: in from members
    lab.converge()
    digest, desired, applied = _lag(lab, first.host)
    assert desired == applied
    late = lab.vm(t, "late", lab.hosts[1])
    after = _lag(lab, first.host)
    assert after[0] == digest, "the referring host was not recompiled"
    assert after[1] == desired + 1 and after[2] == applied, "it lags by one generation"
    # Every other host converges (the newcomer is plugged, its own rules in force);
    # the referring host still runs the set without it: the newcomer is kept out.
    for host in lab.hosts:
        if host != first.host:
            assert not lab.agent.reconcile(host).errors
    assert not lab.ping(late, first), "the set on the wire does not hold the newcomer yet"
    lab.converge()
    assert _lag(lab, first.host)[2] == desired + 1
    assert lab.ping(late, first), "the newcomer is let in by the group's set"
    assert lab.ping(first, late)
