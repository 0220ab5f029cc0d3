"""A port's DHCP binding on a real bridge: replies only from its network's DHCP service.

The nftables table of :mod:`.test_nftables_live`'s world, with packets: a machine on the
service address (10.1.0.1, the subnet gateway where dnsmasq answers) can send DHCP
replies (udp 67 -> 68) to the port, another machine cannot; the port's request to the
service gets its answer back.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from fuyun.policy.render import nftables
from tests.policy.netns_lab import BridgeLab, bridge_lab
from tests.policy.world import ENDPOINTS, host_policy

WEB = ENDPOINTS[0]  # VLAN 100, DHCP service 10.1.0.1
SERVICE, ROGUE = "10.1.0.1", "198.51.100.7"

# Waits for one datagram on udp 68 and prints its source address.
LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 68)); s.settimeout(1.5)
print("ready", flush=True)
try:
    print(s.recvfrom(64)[1][0], flush=True)
except OSError:
    print("nothing", flush=True)
"""
# Sends one datagram from SRC:sport to DST:dport.
SEND = """
import socket, sys
src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((src, sport)); s.sendto(b"dhcp", (dst, dport))
"""
# A DHCP service stand-in: answers one datagram on udp 67 from udp 67.
ANSWER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 67)); s.settimeout(3)
print("ready", flush=True)
try:
    data, peer = s.recvfrom(64); s.sendto(b"offer", peer)
except OSError:
    pass
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[BridgeLab, dict[str, str]]]:
    with bridge_lab() as lab:
        ns = {
            "web": lab.machine(WEB.device, WEB.mac, list(WEB.ips)),
            "service": lab.machine("svc0", "02:00:00:00:00:01", [SERVICE]),
            "rogue": lab.machine("uplink0", "02:00:00:00:99:99", [ROGUE]),
        }
        lab.load(nftables.render(host_policy("lab", [WEB])))
        yield lab, ns


def _py(ns: str, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def _reply_reaches_port(lab: tuple[BridgeLab, dict[str, str]], sender: str, src: str) -> bool:
    _, ns = lab
    listener = _py(ns["web"], LISTEN)
    assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
    _py(ns[sender], SEND, src, "67", WEB.ips[0], "68").wait(5)
    got = listener.stdout.readline().strip()
    listener.wait(5)
    return got == src


@pytest.mark.slow
def test_a_dhcp_reply_from_the_service_reaches_the_port(
    lab: tuple[BridgeLab, dict[str, str]],
) -> None:
    assert _reply_reaches_port(lab, "service", SERVICE)


@pytest.mark.slow
def test_a_dhcp_reply_from_anyone_else_is_dropped(lab: tuple[BridgeLab, dict[str, str]]) -> None:
    assert not _reply_reaches_port(lab, "rogue", ROGUE)


@pytest.mark.slow
def test_the_ports_request_to_the_service_is_answered(
    lab: tuple[BridgeLab, dict[str, str]],
) -> None:
    _, ns = lab
    server = _py(ns["service"], ANSWER)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    listener = _py(ns["web"], LISTEN)
    assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
    # The client sends from its bound socket on 68; the answer comes back to 68.
    listener.kill()
    listener.wait()
    client = _py(
        ns["web"],
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.bind(('{WEB.ips[0]}', 68)); s.settimeout(1.5)\n"
        f"s.sendto(b'discover', ('{SERVICE}', 67))\n"
        "try:\n    print(s.recvfrom(64)[1][0], flush=True)\n"
        "except OSError:\n    print('nothing', flush=True)\n",
    )
    assert client.stdout is not None and client.stdout.readline().strip() == SERVICE
    client.wait(5)
    server.wait(5)
