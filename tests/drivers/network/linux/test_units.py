"""The linux driver's pure parts: plans, rendering, markers and u32 keys (no root needed)."""

from __future__ import annotations

import uuid

import pytest

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.domain.qos import HostQos, PortQos, TenantQos
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.linux import LinuxNetworkDriver, bridges, nft, portsec, tc, u32
from fuyun.drivers.network.linux.marker import Marker

P1, P2, P3 = (str(uuid.UUID(int=(0xC0 + i) << 112)) for i in (1, 2, 3))


def _port(port: str, vlan: int, mac: str, *ips: str) -> PortBinding:
    return PortBinding(port, "vm", "vm", "t", f"n{vlan}", vlan, mac, ips)


def test_one_bridge_per_segment_named_by_vlan() -> None:
    doc = HostPorts(
        "h",
        (
            _port(P1, 200, "fa:16:3e:00:00:01"),
            _port(P2, 100, "fa:16:3e:00:00:02"),
            _port(P3, 200, "fa:16:3e:00:00:03"),
        ),
    )
    plan = bridges.plan(doc)
    assert list(plan.bridges) == ["fybr100", "fybr200"]
    assert plan.bridges["fybr200"] == tuple(sorted((plan.devices[P1], plan.devices[P3])))
    assert plan.devices[P1] == "fy00c10000000"


@pytest.mark.parametrize(
    ("port", "vlan", "message"),
    [(P1, 4095, "out of range"), ("not-a-uuid", 100, "not a UUID")],
)
def test_a_bad_port_map_is_refused(port: str, vlan: int, message: str) -> None:
    with pytest.raises(DriverError, match=message):
        bridges.plan(HostPorts("h", (_port(port, vlan, "fa:16:3e:00:00:01"),)))


def test_anti_spoofing_binds_each_port_to_its_mac_and_addresses() -> None:
    doc = HostPorts("h", (_port(P1, 100, "FA:16:3E:00:00:01", "10.0.0.1", "2001:db8::1"),))
    text = portsec.render(doc, bridges.plan(doc).devices)
    assert text.startswith("table bridge fuyun_ports {}\ndelete table bridge fuyun_ports\n")
    assert '"fy00c10000000" . fa:16:3e:00:00:01' in text
    assert '"fy00c10000000" . 10.0.0.1' in text and '"fy00c10000000" . 2001:db8::1' in text
    with pytest.raises(DriverError, match="bad address"):
        bad = HostPorts("h", (_port(P1, 100, "fa:16:3e:00:00:01", "10.0.0.300"),))
        portsec.render(bad, bridges.plan(bad).devices)


def test_qos_plan_nests_ports_under_their_tenant_with_floors_and_clamped_ceilings() -> None:
    doc = HostQos(
        "h",
        100_000_000,
        (
            PortQos(P2, "fa:16:3e:00:00:02", 1, "b", "t2", 0, 0),
            PortQos(P1, "fa:16:3e:00:00:01", 1, "a", "t1", 5_000_000, 500_000_000, 30_000),
        ),
        (TenantQos("t1", 10_000_000, 40_000_000, (P1,)),),
    )
    plan = tc.plan(doc)
    by_handle = {c.handle: c for c in plan.classes}
    host, tenant = by_handle[tc.HOST_CLASS], by_handle[0x10100]
    a, b = by_handle[0x12000], by_handle[0x12001]  # sorted by port id: P1 then P2
    assert (host.rate_bps, host.ceil_bps) == (100_000_000, 100_000_000)
    assert (tenant.parent, tenant.rate_bps, tenant.ceil_bps) == (
        tc.HOST_CLASS,
        10_000_000,
        40_000_000,
    )
    assert (a.parent, a.rate_bps, a.ceil_bps, a.burst) == (0x10100, 5_000_000, 40_000_000, 30_000)
    assert (b.parent, b.rate_bps, b.ceil_bps) == (tc.HOST_CLASS, tc.FLOOR_BPS, 100_000_000)
    assert plan.filters == (("fa:16:3e:00:00:01", 0x12000), ("fa:16:3e:00:00:02", 0x12001))
    assert tc.plan(doc) == plan, "the same document always builds the same tree"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (HostQos("h", 0), "uplink_bps"),
        (
            HostQos("h", 10, (PortQos(P1, "fa:16:3e:00:00:01", 1, "a", "t", 9, 5),)),
            "above its ceiling",
        ),
        (HostQos("h", 10, (PortQos(P1, "m", 1, "a", "t", 0, 0),) * 2), "twice"),
    ],
)
def test_qos_that_htb_cannot_express_is_refused(doc: HostQos, message: str) -> None:
    with pytest.raises(DriverError, match=message):
        tc.plan(doc)


def test_u32_keys_match_a_mac_before_the_network_header() -> None:
    assert u32.mac_keys("fa:16:3e:7e:00:01") == [
        (0xFFFFFFFF, 0xFA163E7E, -8),
        (0xFFFF0000, 0x00010000, -4),
    ]
    assert u32.mac_keys("fa:16:3e:7e:00:01", -14)[1] == (0xFFFF0000, 0x00010000, -10)


def test_the_marker_is_read_back_from_the_listing_and_left_out_of_the_fingerprint() -> None:
    marker = Marker("h1", 7, "ab12", "0123456789abcdef")
    assert Marker.parse(marker.text()) == marker
    assert Marker.parse("hand-written comment") is None
    listing = (
        "table inet fuyun {\n\tchain forward {\n\t\tct state established accept\n\t}\n\n"
        f'\tchain fuyun_state {{\n\t\tcomment "{marker.text()}"\n\t}}\n}}\n'
    )
    body, comment = nft.split_marker(listing)
    assert comment == marker.text()
    assert "fuyun_state" not in body and "ct state established accept" in body


def test_the_driver_converges_only_its_own_host_and_points() -> None:
    driver = LinuxNetworkDriver("h1", "fylx-never-created")
    with pytest.raises(DriverError, match="converges host h1"):
        driver.apply(AppliedState("host", "h2", "vswitch", 1, "d"), "")
    with pytest.raises(DriverError, match="not one of"):
        driver.observe("host", "h1", "tor-acl")
    assert driver.observe("host", "h1", "vswitch") is None  # no such namespace: nothing applied


def test_a_vswitch_document_of_another_flavor_is_refused_before_the_host_is_touched() -> None:
    driver = LinuxNetworkDriver("h1", "fylx-never-created")
    state = AppliedState("host", "h1", "vswitch", 1, "d")
    with pytest.raises(DriverError, match="not an nftables"):
        driver._apply_vswitch(state, "table=0,priority=0,actions=drop\n")  # OpenFlow text


def test_the_registry_builds_the_linux_driver_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fuyun.drivers.network import create_network_driver

    monkeypatch.setenv("FUYUN_HOST", "hv-0042")
    monkeypatch.setenv("FUYUN_LINUX_NETNS", "fylx-lab")
    driver = create_network_driver("linux")
    assert isinstance(driver, LinuxNetworkDriver)
    assert (driver.name, driver.host, driver.place.netns) == ("linux", "hv-0042", "fylx-lab")
