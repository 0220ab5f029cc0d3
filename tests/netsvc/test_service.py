"""The network node's documents: names, per-segment scopes and the dnsmasq rendering."""

from __future__ import annotations

import uuid

from fuyun.netsvc import dnsmasq
from fuyun.netsvc.scope import DhcpScope, Reservation, SubnetScope
from fuyun.netsvc.service import NetworkService, Segment, interface_name, router_name

V4 = SubnetScope("10.7.0.0/24", "10.7.0.1")
GROWTH = SubnetScope("10.7.1.0/24", "10.7.1.1")
V6 = SubnetScope("fd00:7::/64", "fd00:7::1")


def _service(segments: tuple[Segment, ...]) -> NetworkService:
    scope = DhcpScope(
        network_id=str(uuid.uuid4()),
        network="front",
        tenant="acme",
        vlans=tuple(s.vlan for s in segments),
        zone="front.acme.fuyun.internal",
        mtu=1500,
        enabled=True,
        subnets=tuple(x for s in segments for x in s.subnets),
        reservations=(
            Reservation("fa:16:3e:00:00:02", "10.7.0.2", "web"),
            Reservation("fa:16:3e:00:00:02", "fd00:7::2", "web"),
            Reservation("fa:16:3e:00:00:03", "10.7.1.2", "db"),
        ),
        dns_server="10.7.0.1",
    )
    return NetworkService(scope.network_id, 3, str(uuid.uuid4()), "m1", segments, scope)


def test_names_fit_linux_and_are_stable_per_vrf_and_segment() -> None:
    vrf, net = str(uuid.uuid4()), str(uuid.uuid4())
    assert router_name(vrf) == router_name(vrf) != router_name(str(uuid.uuid4()))
    assert len(interface_name(net, 4094)) <= 15
    assert interface_name(net, 100) != interface_name(net, 101)


def test_each_segment_serves_its_own_subnets_with_every_name_of_the_network() -> None:
    first, growth = Segment(100, (V4, V6)), Segment(101, (GROWTH,))
    svc = _service((first, growth))
    assert first.gateways() == ["10.7.0.1/24", "fd00:7::1/64"]
    scope = svc.segment_scope(growth)
    assert scope.subnets == (GROWTH,) and scope.dns_server == "10.7.1.1"
    assert scope.reservations == svc.scope.reservations  # names resolve on every segment
    assert NetworkService.from_json(svc.to_json()) == svc


def test_an_ipv6_subnet_adds_router_adverts_and_static_dhcpv6() -> None:
    svc = _service((Segment(100, (V4, V6)),))
    conf = dnsmasq.config(
        svc.segment_scope(svc.segments[0]), interface="fs1", hosts_file="/h", lease_file="/l"
    )
    lines = conf.splitlines()
    assert "dhcp-range=set:s1,fd00:7::,static,64,12h" in lines
    assert lines.count("enable-ra") == 1 and "no-resolv" in lines
    assert "fa:16:3e:00:00:02,10.7.0.2,[fd00:7::2],web" in dnsmasq.hosts(svc.scope)


def test_an_ipv4_only_network_sends_no_router_adverts() -> None:
    svc = _service((Segment(100, (V4,)),))
    conf = dnsmasq.config(svc.scope, interface="fs1", hosts_file="/h", lease_file="/l")
    assert "enable-ra" not in conf


def test_a_dual_stack_nic_keeps_one_name_and_two_nics_get_two() -> None:
    from fuyun.netsvc.scope import reservation_names

    got = reservation_names(
        [
            ("fa:16:3e:00:00:02", "fd00:7::2", "web"),
            ("fa:16:3e:00:00:02", "10.7.0.2", "web"),
            ("fa:16:3e:00:00:03", "10.7.0.3", "web"),
        ]
    )
    assert [(r.address, r.hostname) for r in got] == [
        ("10.7.0.2", "web"),
        ("10.7.0.3", "web-2"),
        ("fd00:7::2", "web"),
    ]
