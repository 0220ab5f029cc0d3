"""Route leaks in the lab: two tenants' routers joined only while an operator approves it.

Three tenants on the lab's network node: ``lk-acme`` (10.81.0.0/24), ``lk-bolt``
(10.82.0.0/24) and ``lk-copy``, which reuses acme's range in its own VRF. VMs route
through their network's gateway (the tenant router). A pending request changes
nothing; an approved leak lays the link, yet the default deny between tenants still
holds until each side's security group allows the peer's range; a revoke takes the
link and its routes away. The same-range tenant never reaches bolt.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.service import router_name
from tests.support.labworld import LabWorld, Vm

pytestmark = pytest.mark.slow


def _sh(ns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=30
    )


def _pings(lab: LabWorld, src: Vm, dst: Vm) -> bool:
    return _sh(lab.ns(src), "ping", "-c1", "-W1", "-q", dst.ip).returncode == 0


def _routed(lab: LabWorld, vm: Vm, network_id: str) -> None:
    """The VM sends off-link traffic to its gateway (what DHCP would have told it)."""
    gateway = lab.call("GET", f"/networks/{network_id}/dhcp")["subnets"][0]["gateway"]
    result = _sh(lab.ns(vm), "ip", "route", "replace", "default", "via", gateway, "dev", "eth0",
                 "onlink")  # fmt: skip
    assert result.returncode == 0, result.stderr


def _network(lab: LabWorld, tenant: str) -> dict[str, Any]:
    return dict(lab.call("GET", f"/networks?tenant_id={tenant}&name_prefix=net")["items"][0])


def _allow_icmp_from(lab: LabWorld, tenant: str, cidr: str) -> None:
    group = next(
        g
        for g in lab.call("GET", "/security-groups")
        if g["tenant_id"] == tenant and g["name"] == "default"
    )
    lab.call(
        "POST",
        f"/security-groups/{group['id']}/rules",
        json={"direction": "ingress", "protocol": "icmp", "remote_cidr": cidr},
    )


def _router_routes(lab: LabWorld, vrf_id: str) -> str:
    m = lab.lab.manifest()
    assert m is not None
    return _sh(f"{m.router_prefix}{router_name(vrf_id)}", "ip", "route", "show").stdout


def test_tenants_route_to_each_other_only_while_an_approved_leak_and_their_rules_allow(
    lab: LabWorld,
) -> None:
    acme = lab.tenant("lk-acme", "10.81.0.0/24")
    bolt = lab.tenant("lk-bolt", "10.82.0.0/24")
    copy = lab.tenant("lk-copy", "10.81.0.0/24")
    nets = {t: _network(lab, t) for t in (acme, bolt, copy)}
    a1 = lab.vm(acme, "a1", lab.hosts[0])
    b1 = lab.vm(bolt, "b1", lab.hosts[3])  # under the other ToR
    c1 = lab.vm(copy, "c1", lab.hosts[1])
    lab.converge()
    for vm in (a1, b1, c1):
        _routed(lab, vm, nets[vm.tenant]["id"])
        # The node reported the generation it runs: no lag once converged.
        now = lab.call("GET", f"/networks/{nets[vm.tenant]['id']}")
        assert now["services_applied_generation"] == now["generation"]
    assert not _pings(lab, a1, b1) and not _pings(lab, b1, a1)

    # Asked for, not approved: no link, no route, no packet.
    leak = lab.call(
        "POST",
        "/route-leaks",
        json={"network_id": nets[acme]["id"], "peer_network_id": nets[bolt]["id"]},
    )
    assert leak["state"] == "pending"
    lab.converge()
    assert "10.82.0.0/24" not in _router_routes(lab, nets[acme]["vrf_id"])
    assert not _pings(lab, a1, b1)

    # Approved: the routers route each other's prefix, and only that.
    lab.call("POST", f"/route-leaks/{leak['id']}/approve")
    lab.converge()
    assert "10.82.0.0/24" in _router_routes(lab, nets[acme]["vrf_id"])
    assert "10.81.0.0/24" in _router_routes(lab, nets[bolt]["vrf_id"])
    assert "default" not in _router_routes(lab, nets[acme]["vrf_id"])
    # ... but between tenants the default is still deny: a route is not a rule.
    assert not _pings(lab, a1, b1) and not _pings(lab, b1, a1)

    _allow_icmp_from(lab, bolt, "10.81.0.0/24")
    _allow_icmp_from(lab, acme, "10.82.0.0/24")
    lab.converge()
    assert _pings(lab, a1, b1), "route + rule: acme reaches bolt"
    assert _pings(lab, b1, a1), "and back"
    # The tenant with acme's range is in another VRF, which the leak does not join:
    # bolt's rule admits its addresses, yet there is no route either way.
    assert not _pings(lab, c1, b1)
    assert "10.82.0.0/24" not in _router_routes(lab, nets[copy]["vrf_id"])

    # Revoked: the link and both routes go; blocked again.
    path = LeakPath(leak["id"], nets[acme]["vrf_id"], nets[bolt]["vrf_id"], (), ())
    lab.call("DELETE", f"/route-leaks/{leak['id']}")
    lab.converge()
    assert "10.82.0.0/24" not in _router_routes(lab, nets[acme]["vrf_id"])
    assert "10.81.0.0/24" not in _router_routes(lab, nets[bolt]["vrf_id"])
    m = lab.lab.manifest()
    assert m is not None
    gone = _sh(f"{m.router_prefix}{router_name(nets[acme]['vrf_id'])}", "ip", "link", "show",
               "dev", path.link("a"))  # fmt: skip
    assert gone.returncode != 0
    assert not _pings(lab, a1, b1) and not _pings(lab, b1, a1)


def test_a_network_node_fed_over_the_api_serves_routers_and_leaks(lab: LabWorld) -> None:
    """``fuyun agent --api … --lab``: the node reads the API with a host's credential."""
    from fuyun.agent import NetworkServicesAgent
    from fuyun.agent.api_source import ApiNetworkServices

    one = lab.tenant("la-one", "10.85.0.0/24")
    two = lab.tenant("la-two", "10.86.0.0/24")
    nets = {t: _network(lab, t) for t in (one, two)}
    v1, v2 = lab.vm(one, "v1", lab.hosts[0]), lab.vm(two, "v2", lab.hosts[2])
    for result in lab.agent.reconcile_all(lab.hosts, audit=True):  # the hosts, from the store
        assert not result.errors, result.errors
    leak = lab.call(
        "POST",
        "/route-leaks",
        json={"network_id": nets[one]["id"], "peer_network_id": nets[two]["id"],
              "approve": True},
    )  # fmt: skip
    _allow_icmp_from(lab, two, "10.85.0.0/24")
    _allow_icmp_from(lab, one, "10.86.0.0/24")
    for result in lab.agent.reconcile_all(lab.hosts, audit=True):
        assert not result.errors, result.errors
    token = lab.call("POST", f"/hosts/{lab.hosts[0]}/agent-credentials")["token"]
    lab.client.headers["Authorization"] = f"Bearer {token}"
    node = lab.lab.network_node()  # the lab's node, driven from the API this time
    try:
        source = ApiNetworkServices([""], token, lab.hosts[0], client=lab.client)
        passed = NetworkServicesAgent(source, node).reconcile()
    finally:
        del lab.client.headers["Authorization"]
        node.close()  # its servers are the lab's, stopped with it
    assert not passed.errors, passed.errors
    assert {nets[one]["id"], nets[two]["id"]} <= set(passed.applied)
    assert passed.leaks_applied == [leak["id"]]
    for vm in (v1, v2):
        _routed(lab, vm, nets[vm.tenant]["id"])
    assert _pings(lab, v1, v2) and _pings(lab, v2, v1)
    lab.call("DELETE", f"/route-leaks/{leak['id']}")
    lab.converge()
    assert not _pings(lab, v1, v2)
