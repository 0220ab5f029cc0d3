"""Gateways, DHCP and DNS in the lab, run by the network-services agent from the store.

Nothing here starts a router or a DHCP server by hand: networks and VMs are created
through the API, and the lab's agent (host documents + network services) converges
them. VM namespaces come up with their IPAM address configured by the lab's plugger;
each test flushes it and lets busybox ``udhcpc`` get it back from the network's dnsmasq.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fuyun.netsvc.service import interface_name, router_name
from tests.support.capabilities import missing
from tests.support.labworld import LabWorld, Vm, wait_for

pytestmark = pytest.mark.slow
CLIENT6 = str(Path(__file__).resolve().parents[1] / "support" / "dhcpv6_client.py")
UDHCPC_SCRIPT = """#!/bin/sh
# busybox udhcpc hook: configure what the server offered, and say what it was.
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    ip route replace default via "$router" dev "$interface"
    echo "$ip $router $dns $domain" > "$LEASE_OUT"
    ;;
esac
exit 0
"""


@pytest.fixture(scope="module")
def dhcp_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool, package in (("dnsmasq", "dnsmasq-base"), ("busybox", "busybox-static")):
        if shutil.which(tool) is None:
            missing(package, f"{tool} is not installed (apt-get install {package})")
    script = tmp_path_factory.mktemp("udhcpc") / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    return script


def _in(lab: LabWorld, vm: Vm, *cmd: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["ip", "netns", "exec", lab.ns(vm), *cmd], capture_output=True, text=True, timeout=60
    )
    assert not check or result.returncode == 0, result.stderr
    return result


def dhcp(lab: LabWorld, vm: Vm, script: Path, request: str | None = None) -> list[str]:
    """Forget the VM's address, run udhcpc once; answers [ip, router, dns, domain]."""
    out = script.parent / f"{vm.ifname}.lease"
    out.unlink(missing_ok=True)
    _in(lab, vm, "sh", "-ec", "ip addr flush dev eth0 && ip route flush dev eth0", check=True)
    extra = ["-r", request] if request else []
    result = _in(
        lab, vm, "env", f"LEASE_OUT={out}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q",
        "-f", "-t", "10", "-T", "1", "-s", str(script), *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    return out.read_text().split()


def resolve(lab: LabWorld, vm: Vm, name: str, server: str) -> str | None:
    result = _in(lab, vm, "busybox", "nslookup", name, server)
    answers = [
        line.split()[-1] for line in result.stdout.splitlines()[2:] if line.startswith("Address")
    ]
    return answers[0] if result.returncode == 0 and answers else None


def pings(lab: LabWorld, vm: Vm, address: str) -> bool:
    return _in(lab, vm, "ping", "-c1", "-W1", "-q", address).returncode == 0


def network(lab: LabWorld, tenant: str, name: str, cidr: str) -> dict[str, Any]:
    return dict(
        lab.call(
            "POST",
            "/networks",
            json={"name": name, "cidr": cidr, "site": "sz1", "tenant_id": tenant},
        )
    )


def scope(lab: LabWorld, network_id: str) -> dict[str, Any]:
    return dict(lab.call("GET", f"/networks/{network_id}/dhcp"))


def dnsmasq_pid(lab: LabWorld, svc_scope: dict[str, Any]) -> int:
    vlan = svc_scope["vlans"][0]
    pidfile = lab.lab.root / "netsvc" / svc_scope["network_id"] / str(vlan) / "dnsmasq.pid"
    return int(pidfile.read_text().strip())


def test_vms_get_ipam_addresses_names_and_routes_inside_their_tenant_only(
    lab: LabWorld, dhcp_script: Path
) -> None:
    acme = lab.tenant("ns-acme", "10.41.0.0/24")  # network "net"
    back = network(lab, acme, "back", "10.42.0.0/24")
    bolt = lab.tenant("ns-bolt", "10.41.0.0/24")  # the same range, another VRF
    web1 = lab.vm(acme, "web1", lab.hosts[0])
    web2 = lab.vm(acme, "web2", lab.hosts[3])
    db = lab.vm(acme, "db", lab.hosts[1], network="back")
    strangers = [lab.vm(bolt, f"b{i}", lab.hosts[2]) for i in range(3)]
    lab.converge()

    front = scope(
        lab, lab.call("GET", f"/networks?tenant_id={acme}&name_prefix=net")["items"][0]["id"]
    )
    gw_front = front["subnets"][0]["gateway"]
    gw_back = scope(lab, back["id"])["subnets"][0]["gateway"]
    m = lab.lab.manifest()
    assert m is not None
    assert f"{m.router_prefix}{router_name(back['vrf_id'])}" in lab.lab.status().routers

    expected = ((web1, gw_front, "net"), (web2, gw_front, "net"), (db, gw_back, "back"))
    for vm, gateway, zone_net in expected:
        ip, router, dns, domain = dhcp(lab, vm, dhcp_script)
        assert (ip, router, dns) == (vm.ip, gateway, gateway)
        assert domain == f"{zone_net}.ns-acme.fuyun.internal"
    for vm in strangers:
        assert dhcp(lab, vm, dhcp_script)[0] == vm.ip

    zone = front["zone"]
    assert resolve(lab, web1, f"web1.{zone}", gw_front) == web1.ip
    assert resolve(lab, web1, f"web2.{zone}", gw_front) == web2.ip
    assert resolve(lab, web1, "b0.net.ns-bolt.fuyun.internal", gw_front) is None
    assert resolve(lab, web1, "example.com", gw_front) is None  # nothing leaves the lab
    reverse = _in(lab, web1, "busybox", "nslookup", web2.ip, gw_front).stdout
    assert f"web2.{zone}" in reverse

    assert pings(lab, web1, db.ip), "no route to the tenant's second network"
    assert pings(lab, db, web2.ip)
    acme_front = {web1.ip, web2.ip}
    foreign = [s.ip for s in strangers if s.ip not in acme_front]
    assert foreign, "the other tenant needs an address acme does not use"
    for address in foreign:
        assert not pings(lab, db, address), f"acme reached {address} in another VRF"
        assert not pings(lab, web1, address)
    assert not pings(lab, strangers[0], db.ip), "the other tenant reached acme's network"


def test_a_new_vm_gets_its_lease_after_a_reload_that_keeps_the_server(
    lab: LabWorld, dhcp_script: Path
) -> None:
    t = lab.tenant("ns-grow", "10.43.0.0/24")
    first = lab.vm(t, "first", lab.hosts[0])
    lab.converge()
    net = lab.call("GET", f"/networks?tenant_id={t}&name_prefix=net")["items"][0]
    before = dnsmasq_pid(lab, scope(lab, net["id"]))
    assert dhcp(lab, first, dhcp_script)[0] == first.ip
    second = lab.vm(t, "second", lab.hosts[1])
    lab.converge()
    assert dhcp(lab, second, dhcp_script)[0] == second.ip
    assert dnsmasq_pid(lab, scope(lab, net["id"])) == before  # SIGHUP, not a restart
    svc_dir = lab.lab.root / "netsvc" / net["id"] / str(scope(lab, net["id"])["vlans"][0])
    leases = (svc_dir / "leases").read_text()
    assert first.ip in leases and second.ip in leases


def test_after_a_migration_the_vm_renews_and_keeps_its_address(
    lab: LabWorld, dhcp_script: Path
) -> None:
    t = lab.tenant("ns-move", "10.44.0.0/24")
    mover = lab.vm(t, "mover", lab.hosts[0])
    peer = lab.vm(t, "peer", lab.hosts[3])
    lab.converge()
    assert dhcp(lab, mover, dhcp_script)[0] == mover.ip
    assert dhcp(lab, peer, dhcp_script)[0] == peer.ip
    target = lab.hosts[2]  # under the other ToR
    lab.call("POST", f"/vms/{mover.id}/migrate", json={"to": target})
    lab.converge()
    moved = Vm(mover.id, mover.name, t, target, mover.port_id, mover.ip)
    assert lab.binding(target, mover.id).port_id == mover.port_id
    assert mover.ifname in lab.driver.ovsdb.ports(lab.lab.hosts()[target])
    assert mover.ifname not in lab.driver.ovsdb.ports(lab.lab.hosts()[mover.host])
    ip, router, _, _ = dhcp(lab, moved, dhcp_script, request=mover.ip)
    assert ip == mover.ip
    assert pings(lab, moved, router) and pings(lab, moved, peer.ip)


def test_deleting_a_network_stops_its_server_and_its_router(lab: LabWorld) -> None:
    t = lab.call("POST", "/tenants", json={"name": "ns-gone", "quotas": {}})["id"]
    net = network(lab, t, "tmp", "10.45.0.0/24")
    lab.converge()
    svc = scope(lab, net["id"])
    pid = dnsmasq_pid(lab, svc)
    m = lab.lab.manifest()
    assert m is not None
    router = f"{m.router_prefix}{router_name(net['vrf_id'])}"
    assert router in lab.lab.status().routers
    ifname = interface_name(net["id"], svc["vlans"][0])
    lab.call("DELETE", f"/networks/{net['id']}")
    lab.converge()
    assert not Path(f"/proc/{pid}").exists() or "dnsmasq" not in Path(
        f"/proc/{pid}/cmdline"
    ).read_text(errors="replace")
    assert router not in lab.lab.status().routers
    link = subprocess.run(
        ["ip", "-n", m.switch_netns, "link", "show", "dev", ifname], capture_output=True
    )
    assert link.returncode != 0
    assert not (lab.lab.root / "netsvc" / net["id"]).exists()


def test_ipv6_router_adverts_and_static_dhcpv6_hand_out_the_ipam_address(
    lab: LabWorld, dhcp_script: Path
) -> None:
    t = lab.tenant("ns-six", "10.47.0.0/24")
    net = lab.call("GET", f"/networks?tenant_id={t}&name_prefix=net")["items"][0]
    lab.call("POST", f"/networks/{net['id']}/subnets", json={"cidr": "fd00:47::/64"})
    one = lab.vm(t, "one", lab.hosts[0])
    two = lab.vm(t, "two", lab.hosts[3])
    lab.converge()
    v6 = {
        vm.name: next(ip for ip in lab.binding(vm.host, vm.id).ips if ":" in ip)
        for vm in (one, two)
    }
    gateway6 = next(s["gateway"] for s in scope(lab, net["id"])["subnets"] if ":" in s["cidr"])
    for vm in (one, two):
        # Only what the network hands out: no global address, links bounced to solicit.
        _in(
            lab,
            vm,
            "sh",
            "-ec",
            "ip -6 addr flush dev eth0 scope global"
            " && ip link set eth0 down && ip link set eth0 up",
            check=True,
        )
    for vm in (one, two):
        routed = wait_for(
            lambda vm=vm: (
                "via fe80:" in _in(lab, vm, "ip", "-6", "route", "show", "default").stdout
            ),
            15.0,
        )
        assert routed is not None, "no router advert installed a default route"
        got = _in(lab, vm, sys.executable, CLIENT6, lab.binding(vm.host, vm.id).mac)
        assert got.returncode == 0, got.stdout + got.stderr
        assert got.stdout.strip() == v6[vm.name]
        _in(
            lab,
            vm,
            "ip",
            "-6",
            "addr",
            "add",
            f"{v6[vm.name]}/64",
            "dev",
            "eth0",
            "nodad",
            check=True,
        )
    assert _in(lab, one, "ping", "-6", "-c1", "-W2", "-q", gateway6).returncode == 0
    assert _in(lab, one, "ping", "-6", "-c1", "-W2", "-q", v6["two"]).returncode == 0
    zone = scope(lab, net["id"])["zone"]
    gateway4 = next(s["gateway"] for s in scope(lab, net["id"])["subnets"] if ":" not in s["cidr"])
    assert dhcp(lab, one, dhcp_script)[0] == one.ip  # the IPv4 lease of the same NIC
    answer = _in(lab, one, "busybox", "nslookup", "-type=AAAA", f"two.{zone}", gateway4).stdout
    assert v6["two"] in answer  # the dual-stack NIC has one name with both records
