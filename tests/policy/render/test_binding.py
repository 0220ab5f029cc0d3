"""Each port's Binding (MAC, addresses, DHCP service) as every enforcement point renders it.

DHCP is allowed by the compiled policy only with the network's DHCP service: requests to
it (or the all-servers address), replies from it. A port of a network without a service
gets no DHCP at all; anti-spoofing holds its source addresses to its own.
"""

from __future__ import annotations

import dataclasses

from fuyun.policy.compile import compile_device
from fuyun.policy.ir import DevicePolicy, Endpoint, from_json, to_json
from fuyun.policy.render import iptables, nftables, nxos, openflow
from tests.policy.world import ENDPOINTS, host_policy, snapshot, tor_policy

WITH = ENDPOINTS[0]  # VLAN 100: DHCP service on 10.1.0.1 and 2001:db8:1::1
WITHOUT = ENDPOINTS[3]  # VLAN 101: static-only network


def _one(e: Endpoint, ep: str = "vswitch") -> DevicePolicy:
    return compile_device(snapshot(), "h9", ep, [e])


def test_the_binding_is_the_ports_own_mac_addresses_and_service() -> None:
    b = WITH.binding
    assert (b.mac, b.ips, b.dhcp_servers) == (WITH.mac, WITH.ips, ("10.1.0.1", "2001:db8:1::1"))
    assert WITHOUT.binding.dhcp_servers == ()
    policy = host_policy()
    assert [p.endpoint.dhcp for p in from_json(to_json(policy)).ports] == [
        p.endpoint.dhcp for p in policy.ports
    ]


def test_nftables_dhcp_only_with_the_service() -> None:
    text = nftables.render(_one(WITH))
    assert "ip daddr { 255.255.255.255, 10.1.0.1 } udp sport 68 udp dport 67 return" in text
    assert "ip saddr { 10.1.0.1 } udp sport 67 udp dport 68 accept" in text
    assert 'ip saddr != { 10.1.0.10 } drop comment "anti-spoofing"' in text
    bare = nftables.render(_one(WITHOUT))
    assert "udp dport 67 return" not in bare and "udp dport 68 accept" not in bare


def test_openflow_dhcp_only_with_the_service() -> None:
    text = openflow.render(_one(WITH))
    assert "udp,reg5=1,nw_dst=10.1.0.1,udp_src=68,udp_dst=67" in text
    assert "udp,reg5=1,nw_dst=255.255.255.255,udp_src=68,udp_dst=67" in text
    assert "udp,reg6=1,nw_src=10.1.0.1,udp_src=67,udp_dst=68" in text
    assert "udp_src=68,udp_dst=67,actions" not in openflow.render(_one(WITHOUT))


def test_iptables_dhcp_only_with_the_service() -> None:
    text = iptables.render(_one(WITH, "vm-iptables"))
    assert "-4 -A OUTPUT -d 10.1.0.1/32 -p udp -m udp --sport 68 --dport 67 -j ACCEPT" in text
    assert "-4 -A INPUT -s 10.1.0.1/32 -p udp -m udp --sport 67 --dport 68 -j ACCEPT" in text
    assert "--dport 67" not in iptables.render(_one(WITHOUT, "vm-iptables"))


def test_tor_dhcp_names_the_service_and_a_moved_mac_changes_the_guard() -> None:
    text = nxos.render(tor_policy())
    assert "permit udp host 10.1.0.1 eq 67 any eq 68" in text
    assert "permit udp any eq 67 any eq 68" not in text, "no DHCP reply from anyone"
    moved = [dataclasses.replace(e, mac="fa:16:3e:99:99:99") if e is WITH else e for e in ENDPOINTS]
    other = compile_device(
        snapshot(), "tor1", "tor-acl", moved, vlans=tor_policy().vlans, trunks=tor_policy().trunks
    )
    assert "fa16.3e99.9999 vlan 100 interface Ethernet1/1" in nxos.render(other)
