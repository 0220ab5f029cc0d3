"""The nftables ruleset on a real Linux bridge with br_netfilter: packets, not parsing.

This is the proof of the renderer's central choice — ``table inet fuyun`` keyed by
MAC, with conntrack from br_netfilter — on the kernel CI runs: allowed services
connect, denied ones do not, replies of allowed flows return although the
receiver's ingress rules would refuse them as new flows, and a VM cannot send
from an address it does not own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuyun.policy.render import nftables
from tests.policy.netns_lab import BridgeLab, bridge_lab
from tests.policy.world import ENDPOINTS, host_policy

WEB, DB = ENDPOINTS[0], ENDPOINTS[2]  # tenant 1's web-a and db, VLAN 100
OUTSIDE = ("198.51.100.7", "203.0.113.5", "2001:db8:9::7")


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[BridgeLab, dict[str, str]]]:
    with bridge_lab() as lab:
        ns = {
            "web": lab.machine(WEB.device, WEB.mac, [*WEB.ips, "10.1.0.99"]),
            "db": lab.machine(DB.device, DB.mac, list(DB.ips)),
            "out": lab.machine("uplink0", "02:00:00:00:99:99", list(OUTSIDE)),
        }
        for name in ns.values():
            lab.serve(name, [22, 23, 80, 5432, 8080])
        ruleset = nftables.render(host_policy("lab", [WEB, DB]))
        lab.load(ruleset)
        lab.load(ruleset)  # a reload replaces the table in one transaction
        yield lab, ns


@pytest.mark.slow
@pytest.mark.parametrize(
    ("src", "src_ip", "dst_ip", "port", "passes"),
    [
        ("out", "198.51.100.7", "10.1.0.10", 80, True),  # web: tcp 80-443 from anywhere
        ("out", "198.51.100.7", "10.1.0.10", 23, False),  # global deny beats everything
        ("out", "198.51.100.7", "10.1.0.10", 22, False),  # ssh only from the admin range ...
        ("out", "203.0.113.5", "10.1.0.10", 22, True),  # ... which this is
        ("web", "10.1.0.10", "10.1.0.20", 5432, True),  # db accepts 5432 from group web
        ("out", "198.51.100.7", "10.1.0.20", 5432, False),  # ... and from no one else
        ("db", "10.1.0.20", "10.1.0.10", 5432, False),  # web does not accept 5432
        ("db", "10.1.0.20", "10.1.0.10", 80, True),  # db egress any AND web ingress 80
        ("web", "10.1.0.10", "198.51.100.7", 8080, True),  # reply returns: conntrack
        ("web", "10.1.0.99", "198.51.100.7", 8080, False),  # spoofed source: anti-spoofing
        ("out", "2001:db8:9::7", "2001:db8:1::10", 80, True),  # IPv6 too
        ("out", "2001:db8:9::7", "2001:db8:1::20", 5432, False),
        ("web", "2001:db8:1::10", "2001:db8:1::20", 5432, True),
    ],
)
def test_packets_obey_the_policy(
    lab: tuple[BridgeLab, dict[str, str]],
    src: str,
    src_ip: str,
    dst_ip: str,
    port: int,
    passes: bool,
) -> None:
    bridge, ns = lab
    assert bridge.connects(ns[src], src_ip, dst_ip, port) is passes
