"""The host bridge's flow table as pure functions of the documents."""

from __future__ import annotations

import pytest

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import PortBinding
from fuyun.drivers.network.ovs.flows import (
    POLICY_BASE,
    POLICY_COOKIE,
    PORTS_COOKIE,
    bundle,
    policy_flows,
    port_flows,
)


def test_policy_tables_move_behind_the_port_security_table() -> None:
    rendered = (
        "# header\n"
        f"cookie={POLICY_COOKIE},table=0,priority=0,actions=resubmit(,1)\n"
        f"cookie={POLICY_COOKIE},table=2,priority=90,ip,actions=ct(table=5,zone=NXM_NX_REG7[0..15])\n"
    )
    flows = policy_flows(rendered)
    assert flows == [
        f"cookie={POLICY_COOKIE},table=10,priority=0,actions=resubmit(,11)",
        f"cookie={POLICY_COOKIE},table=12,priority=90,ip,actions=ct(table=15,zone=NXM_NX_REG7[0..15])",
    ]


def test_empty_policy_switches_and_an_unrenderable_one_drops() -> None:
    assert policy_flows("") == [
        f"cookie={POLICY_COOKIE},table={POLICY_BASE},priority=0,actions=NORMAL"
    ]
    assert policy_flows("# fuyun could not render this device: boom\n") == []


def test_a_ruleset_for_another_switch_is_refused() -> None:
    with pytest.raises(DriverError, match="not an OpenFlow table"):
        policy_flows("table bridge fuyun {\n}\n")


def test_a_port_may_send_only_with_its_own_mac() -> None:
    b = PortBinding("p", "v", "vm", "t", "n", 100, "FA:16:3E:00:00:01", ("10.0.0.2",))
    flows = port_flows([(b, 7)])
    assert (
        f"cookie={PORTS_COOKIE},table=0,priority=100,in_port=7,dl_src=fa:16:3e:00:00:01,actions=resubmit(,10)"
        in flows
    )
    assert f"cookie={PORTS_COOKIE},table=0,priority=10,in_port=7,actions=drop" in flows
    text = bundle(PORTS_COOKIE, flows)
    assert text.splitlines()[0] == f"delete cookie={PORTS_COOKIE}/-1"
    assert all(line.startswith("add ") for line in text.splitlines()[1:])
