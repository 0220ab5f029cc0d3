"""DHCP, DNS and gateway routing for tenant networks, with real packets in namespaces.

Per tenant a router namespace (its VRF) holds one Linux bridge per network with the
subnet's gateway address, and dnsmasq serves each network on its bridge from the
scope the API returns. VM namespaces hang off the bridges with their IPAM MACs and
run busybox ``udhcpc`` (no address configured by hand). Tenant ``acme`` has two
networks; tenant ``other`` reuses acme's first range in its own router namespace.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from fuyun.drivers.network.dnsmasq import DnsmasqServer
from fuyun.netsvc.scope import DhcpScope, Reservation, SubnetScope
from tests.api.conftest import Api, TenantAccount
from tests.support.capabilities import missing

pytestmark = pytest.mark.slow
UDHCPC_SCRIPT = """#!/bin/sh
# busybox udhcpc hook: configure what the server offered, remember it for the test.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    ip route replace default via "$router" dev "$interface"
    echo "$ip $router $dns $domain" > "$LEASE_OUT"
    ;;
esac
exit 0
"""


def sh(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")
    return result


class Lab:
    def __init__(self, workdir: Path) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.workdir = workdir
        self.namespaces: list[str] = []
        self.servers: list[DnsmasqServer] = []
        self.script = workdir / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)

    def netns(self, role: str) -> str:
        name = f"fyds{self.tag}{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def router(self, tenant: str) -> str:
        ns = self.netns(f"r{tenant}")
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=ns)
        return ns

    def network(self, router: str, index: int, scope: DhcpScope) -> str:
        """A bridge with the gateway in the router namespace, and dnsmasq on it."""
        bridge = f"br{index}"
        sh("ip", "link", "add", bridge, "type", "bridge", ns=router)
        sh("ip", "link", "set", bridge, "up", ns=router)
        for subnet in scope.subnets:
            assert subnet.gateway is not None
            plen = subnet.cidr.split("/")[1]
            sh("ip", "addr", "add", f"{subnet.gateway}/{plen}", "dev", bridge, ns=router)
        server = DnsmasqServer(self.workdir / f"{router}-{bridge}", bridge, netns=router)
        self.servers.append(server)
        server.apply(scope)
        return bridge

    def vm(self, router: str, bridge: str, name: str, mac: str) -> str:
        ns = self.netns(f"v{len(self.namespaces)}")
        outside = f"fyds{self.tag}{len(self.namespaces)}"
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", outside, "netns", router)
        sh("ip", "link", "set", outside, "master", bridge, "up", ns=router)
        sh("ip", "link", "set", "eth0", "address", mac, "up", ns=ns)
        return ns

    def dhcp(self, ns: str) -> list[str]:
        """Run the DHCP client once; answers [ip, router, dns, domain] it was given."""
        out = self.workdir / f"{ns}.lease"
        out.unlink(missing_ok=True)
        result = subprocess.run(
            ["ip", "netns", "exec", ns, "env", f"LEASE_OUT={out}", "busybox", "udhcpc",
             "-i", "eth0", "-n", "-q", "-f", "-t", "8", "-T", "1", "-s", str(self.script)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr + result.stdout
        return out.read_text().split()

    def resolve(self, ns: str, name: str, server: str) -> str | None:
        result = sh("busybox", "nslookup", name, server, ns=ns, check=False)
        answers = [
            line.split()[-1]
            for line in result.stdout.splitlines()[2:]
            if line.startswith("Address")
        ]
        return answers[0] if result.returncode == 0 and answers else None

    def pings(self, ns: str, address: str) -> bool:
        return sh("ping", "-c", "1", "-W", "1", address, ns=ns, check=False).returncode == 0

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for ns in reversed(self.namespaces):
            with suppress(RuntimeError):
                sh("ip", "netns", "delete", ns)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    for tool, package in (
        ("ip", "iproute2"),
        ("dnsmasq", "dnsmasq-base"),
        ("busybox", "busybox-static"),
    ):
        if shutil.which(tool) is None:
            missing(package, f"{tool} is not installed")
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        missing("root", "network namespaces need root")
    made = Lab(tmp_path)
    try:
        yield made
    finally:
        made.close()
    leftover = sh("ip", "netns", "list").stdout
    assert made.tag not in leftover, "the lab left namespaces behind"


def _scope(api: Api, t: TenantAccount, network_id: str) -> DhcpScope:
    raw: dict[str, Any] = api.client.get(
        f"/api/v1/networks/{network_id}/dhcp", headers=t.headers
    ).json()
    return DhcpScope(
        network_id=raw["network_id"], network=raw["network"], tenant=raw["tenant"],
        vlans=tuple(raw["vlans"]), zone=raw["zone"], mtu=raw["mtu"], enabled=raw["enabled"],
        subnets=tuple(SubnetScope(**s) for s in raw["subnets"]),
        reservations=tuple(Reservation(**r) for r in raw["reservations"]),
        dns_server=raw["dns_server"],
    )  # fmt: skip


def _vms(
    api: Api, t: TenantAccount, name: str, network: str, count: int = 1
) -> list[dict[str, Any]]:
    r = api.client.post(
        "/api/v1/vms", headers=t.headers,
        json={"name": name, "flavor": "s1.small", "count": count, "networks": [network]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    out = []
    for vm in r.json()["items"]:
        port = api.client.get(f"/api/v1/ports?vm_id={vm['id']}", headers=t.headers).json()["items"][
            0
        ]
        out.append({"name": vm["name"], "mac": port["mac"], "ip": port["ips"][0]})
    return out


def test_vms_get_their_ipam_address_names_and_a_route_inside_their_vrf_only(
    api: Api, make_tenant: Callable[..., TenantAccount], lab: Lab
) -> None:
    acme, other = make_tenant("acme"), make_tenant("other")
    nets = {}
    for t, name, cidr in (
        (acme, "front", "10.7.0.0/24"),
        (acme, "back", "10.8.0.0/24"),
        (other, "front", "10.7.0.0/24"),
    ):
        r = api.client.post(
            "/api/v1/networks", headers=t.headers, json={"name": name, "cidr": cidr}
        )
        assert r.status_code == 201, r.text
        nets[(t.name, name)] = r.json()["id"]
    web = _vms(api, acme, "web", "front", count=2)
    db = _vms(api, acme, "db", "back")
    stranger = _vms(api, other, "web", "front")

    routers = {t: lab.router(t) for t in ("acme", "other")}
    bridges = {}
    for i, ((tenant, net), network_id) in enumerate(sorted(nets.items())):
        owner = acme if tenant == "acme" else other
        bridges[(tenant, net)] = lab.network(routers[tenant], i, _scope(api, owner, network_id))

    def boot(tenant: str, net: str, vm: dict[str, Any]) -> str:
        ns = lab.vm(routers[tenant], bridges[(tenant, net)], vm["name"], vm["mac"])
        vm["ns"] = ns
        return ns

    for vm in web:
        boot("acme", "front", vm)
    boot("acme", "back", db[0])
    boot("other", "front", stranger[0])

    ip, router, dns, domain = lab.dhcp(web[0]["ns"])
    assert (ip, router, dns, domain) == (
        web[0]["ip"],
        "10.7.0.1",
        "10.7.0.1",
        "front.acme.fuyun.internal",
    )
    assert lab.dhcp(web[1]["ns"])[0] == web[1]["ip"]
    assert lab.dhcp(db[0]["ns"])[:2] == [db[0]["ip"], "10.8.0.1"]
    assert lab.dhcp(stranger[0]["ns"])[:2] == [stranger[0]["ip"], "10.7.0.1"]

    # Names: its own and a sibling's; another tenant's name is not known here.
    zone = "front.acme.fuyun.internal"
    assert lab.resolve(web[0]["ns"], f"web-1.{zone}", "10.7.0.1") == web[0]["ip"]
    assert lab.resolve(web[0]["ns"], f"web-2.{zone}", "10.7.0.1") == web[1]["ip"]
    assert lab.resolve(web[0]["ns"], "web-1.front.other.fuyun.internal", "10.7.0.1") is None
    assert lab.resolve(web[0]["ns"], "example.com", "10.7.0.1") is None, "never forwards out"

    # Routed inside the tenant's VRF: front reaches back through the gateway...
    assert lab.pings(web[0]["ns"], db[0]["ip"])
    # ...and the other tenant, with the same range, reaches nothing of acme's.
    assert not lab.pings(stranger[0]["ns"], db[0]["ip"])

    # A new VM: its reservation appears on reload (SIGHUP), the first lease is kept.
    late = _vms(api, acme, "late", "front")[0]
    server = lab.servers[sorted(nets).index(("acme", "front"))]
    pid_before = server.pidfile.read_text()
    server.apply(_scope(api, acme, nets[("acme", "front")]))
    assert server.pidfile.read_text() == pid_before, "reloaded, not restarted"
    assert lab.dhcp(boot("acme", "front", late))[0] == late["ip"]
    leases = server.leases.read_text()
    assert web[0]["mac"] in leases and late["mac"] in leases
