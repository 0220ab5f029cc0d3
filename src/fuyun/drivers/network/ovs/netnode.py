"""The network node: tenant routers and per-segment DHCP/DNS, wired into Open vSwitch.

For each :class:`~fuyun.netsvc.service.NetworkService` it is given, the node keeps

- a **router namespace per VRF** (``{prefix}fr…``) with IPv4 and IPv6 forwarding on.
  Only the VRF's own networks have interfaces in it, so a tenant's networks route to
  each other and to nothing else: there is no link, route or namespace shared between
  two VRFs, and two tenants may use the same ranges;
- per segment (VLAN) of the network, a veth pair: one end in the router with the
  segment's gateway addresses, the other an OVS **access port** ``tag=VLAN`` on the
  module's service bridge (the aggregation bridge in the lab), so the gateway sits on
  the segment's L2 domain like a ToR's SVI would;
- per segment a :class:`~fuyun.drivers.network.dnsmasq.DnsmasqServer` bound to that
  interface, serving the scope's static reservations and names (``no-resolv``).

An approved **route leak** (:class:`~fuyun.netsvc.leaks.LeakPath`) is a veth pair
between the two VRFs' routers, link-local addressed only (``fe80::1`` and
``fe80::2``, which every link may reuse), with a route in each router to exactly the
prefixes the other side exports — IPv4 routes too, through the IPv6 next hop — and
nothing else: no default route, no transit to a third VRF. Removing the link takes
its routes with it.

Level-based and restart-safe: what was applied for a network is written to
``workdir/NETWORK/service.json`` after it is fully in force, so :meth:`applied` answers
after a restart and :meth:`remove` can take a deleted network's interfaces and
servers away without the store. Re-applying an unchanged service changes nothing; a
changed reservation list reaches dnsmasq by SIGHUP (leases kept).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from pyroute2 import netns

from fuyun.domain.errors import DriverError
from fuyun.drivers.network.dnsmasq import DnsmasqServer, kill_pidfile
from fuyun.drivers.network.ovs.ovsdb import Ovsdb
from fuyun.netsvc.leaks import LeakPath
from fuyun.netsvc.service import NetworkService, Segment, router_name

SERVICE_ID = "fuyun-netsvc"  # interface external_ids key: the network served


class NetworkNode:
    def __init__(
        self,
        ovsdb: Ovsdb,
        *,
        switch_netns: str,
        prefix: str,
        workdir: Path,
        bridges: dict[str, str],  # module -> the bridge its gateways attach to
    ) -> None:
        self.ovsdb, self.switch_netns, self.prefix = ovsdb, switch_netns, prefix
        self.workdir, self.bridges = workdir, bridges
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._servers: dict[tuple[str, int], DnsmasqServer] = {}

    # -- what runs --------------------------------------------------------------------

    def namespace(self, router: str) -> str:
        return f"{self.prefix}{router}"

    def applied(self) -> dict[str, NetworkService]:
        """Network id -> the service in force (as recorded after its last apply); a
        network whose dnsmasq is no longer running answers generation -1, so the next
        pass starts it again."""
        out = {}
        for f in sorted(self.workdir.glob("*/service.json")):
            try:
                svc = NetworkService.from_json(f.read_text())
            except (ValueError, KeyError, TypeError):
                continue  # a torn record: the next apply rewrites it
            if svc.scope.enabled and not all(
                _alive(f.parent / str(s.vlan) / "dnsmasq.pid") for s in svc.segments
            ):
                svc = replace(svc, generation=-1)
            out[f.parent.name] = svc
        return out

    def modules(self) -> set[str]:
        return set(self.bridges)

    # -- apply and remove -------------------------------------------------------------

    def apply(self, svc: NetworkService) -> None:
        bridge = self.bridges.get(svc.module)
        if bridge is None:
            raise DriverError(f"network node: no service bridge for module {svc.module}")
        before = self.applied().get(svc.network_id)
        ns = self.namespace(svc.router)
        if before is not None and before.router != svc.router:
            self.remove(svc.network_id)  # the network moved to another VRF
            before = None
        # Only reservations changed (a VM came or went): the router is as it was, and the
        # change is a hosts file and a SIGHUP. Anything else is checked piece by piece.
        wiring = before is None or before.generation < 0 or before.segments != svc.segments
        if wiring:
            self._router(ns)
        keep = {s.vlan for s in svc.segments}
        for old in before.segments if before else ():
            if old.vlan not in keep:
                self._drop_segment(before, old)  # type: ignore[arg-type]
        for seg in svc.segments:
            if wiring:
                self._segment(svc, seg, bridge, ns)
            server = self._server(svc.network_id, seg.vlan, svc.interface(seg), ns)
            server.apply(svc.segment_scope(seg))
        record = self.workdir / svc.network_id / "service.json"
        tmp = record.with_suffix(".tmp")
        tmp.write_text(svc.to_json())
        tmp.replace(record)

    def remove(self, network_id: str) -> None:
        """Stop the network's servers and take its router interfaces away; the router
        namespace goes with the VRF's last network."""
        svc = self.applied().get(network_id)
        if svc is not None:
            for seg in svc.segments:
                self._drop_segment(svc, seg)
            if not any(
                o.router == svc.router for k, o in self.applied().items() if k != network_id
            ):
                ns = self.namespace(svc.router)
                if ns in netns.listnetns():
                    netns.remove(ns)
        shutil.rmtree(self.workdir / network_id, ignore_errors=True)

    def shutdown(self) -> None:
        """Stop every dnsmasq this node runs (the namespaces stay, for ``down``)."""
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
        for pidfile in self.workdir.glob("*/*/dnsmasq.pid"):
            kill_pidfile(pidfile)

    def close(self) -> None:
        self.ovsdb.close()

    # -- route leaks ------------------------------------------------------------------

    def applied_leaks(self) -> dict[str, LeakPath]:
        """Leak id -> the path in force; a leak whose link is gone (its router was
        removed with a VRF's last network) is left out, so the next pass lays it again."""
        out = {}
        for f in sorted((self.workdir / "leaks").glob("*.json")):
            try:
                path = LeakPath.from_json(f.read_text())
            except (ValueError, KeyError, TypeError):
                continue
            if _exists(path.link("a"), self.namespace(router_name(path.vrf_id))):
                out[path.leak_id] = path
        return out

    def apply_leak(self, path: LeakPath) -> None:
        ns_a = self.namespace(router_name(path.vrf_id))
        ns_b = self.namespace(router_name(path.peer_vrf_id))
        link_a, link_b = path.link("a"), path.link("b")
        record = self.workdir / "leaks" / f"{path.leak_id}.json"
        before = _read_leak(record)
        self._router(ns_a)
        self._router(ns_b)
        if not _exists(link_a, ns_a):
            if _exists(link_b, ns_b):
                _run(["ip", "-n", ns_b, "link", "del", link_b])
            _run(["ip", "-n", ns_a, "link", "add", link_a, "type", "veth",
                  "peer", "name", link_b, "netns", ns_b])  # fmt: skip
            before = None  # a new link carries no route yet
        for ns, link, mine in ((ns_a, link_a, "fe80::1"), (ns_b, link_b, "fe80::2")):
            _run(["ip", "-n", ns, "link", "set", link, "up"])
            _run(["ip", "-6", "-n", ns, "addr", "replace", f"{mine}/64", "dev", link, "nodad"])
        sides = (
            (ns_a, link_a, "fe80::2", path.peer_exports, before.peer_exports if before else ()),
            (ns_b, link_b, "fe80::1", path.exports, before.exports if before else ()),
        )
        for ns, link, peer, want, had in sides:
            for old in {e.prefix for e in had} - {e.prefix for e in want}:
                _run(["ip", "-n", ns, "route", "del", old, "dev", link])
            for e in want:
                family = ["-6"] if ":" in e.prefix else []
                via = ["via", peer] if ":" in e.prefix else ["via", "inet6", peer]
                _run(["ip", *family, "-n", ns, "route", "replace", e.prefix, *via, "dev", link])
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(path.to_json())
        tmp.replace(record)

    def remove_leak(self, leak_id: str) -> None:
        """Delete the link (and with it both routers' routes to the peer)."""
        record = self.workdir / "leaks" / f"{leak_id}.json"
        path = _read_leak(record)
        if path is not None:
            ns_a = self.namespace(router_name(path.vrf_id))
            if _exists(path.link("a"), ns_a):
                _run(["ip", "-n", ns_a, "link", "del", path.link("a")])
            ns_b = self.namespace(router_name(path.peer_vrf_id))
            if _exists(path.link("b"), ns_b):
                _run(["ip", "-n", ns_b, "link", "del", path.link("b")])
        record.unlink(missing_ok=True)

    # -- pieces -----------------------------------------------------------------------

    def _router(self, ns: str) -> None:
        if ns in netns.listnetns():
            return
        _run(["ip", "netns", "add", ns])
        _run(
            ["ip", "netns", "exec", ns, "sh", "-ec",
             "ip link set lo up && sysctl -qw net.ipv4.ip_forward=1"
             " && sysctl -qw net.ipv6.conf.all.forwarding=1"]
        )  # fmt: skip

    def _segment(self, svc: NetworkService, seg: Segment, bridge: str, ns: str) -> None:
        ifname = svc.interface(seg)
        if not _exists(ifname, ns):
            if _exists(ifname, self.switch_netns):  # a half-made pair: start again
                _run(["ip", "-n", self.switch_netns, "link", "del", ifname])
            _run(
                ["ip", "-n", self.switch_netns, "link", "add", ifname, "type", "veth",
                 "peer", "name", ifname, "netns", ns]
            )  # fmt: skip
            _run(["ip", "-n", self.switch_netns, "link", "set", ifname, "up"])
            _run(
                ["ip", "netns", "exec", ns, "sh", "-ec",
                 f"sysctl -qw net.ipv6.conf.{ifname}.accept_dad=0"
                 f" && ip link set {ifname} up"
                 f" && (ethtool -K {ifname} tx off >/dev/null 2>&1 || true)"]
            )  # fmt: skip
        ids = {SERVICE_ID: svc.network_id, "fuyun-vrf": svc.vrf_id}
        port = self.ovsdb.ports(bridge).get(ifname)
        if port is None:
            self.ovsdb.add_access_ports(bridge, {ifname: (seg.vlan, ids)})
        elif port.tag != seg.vlan or any(port.iface_ids.get(k) != v for k, v in ids.items()):
            self.ovsdb.set_port(ifname, tag=seg.vlan, iface_ids=ids)
        self._addresses(ns, ifname, set(seg.gateways()))

    def _addresses(self, ns: str, ifname: str, want: set[str]) -> None:
        out = _run(["ip", "-n", ns, "-j", "addr", "show", "dev", ifname])
        have = set()
        for link in json.loads(out or "[]"):
            for a in link.get("addr_info", []):
                if a.get("scope") == "global":
                    have.add(f"{a['local']}/{a['prefixlen']}")
        want = {str(ipaddress.ip_interface(w)) for w in want}
        for addr in sorted(have - want):
            _run(["ip", "-n", ns, "addr", "del", addr, "dev", ifname])
        for addr in sorted(want - have):
            extra = ["nodad"] if ":" in addr else []
            _run(["ip", "-n", ns, "addr", "add", addr, "dev", ifname, *extra])

    def _server(self, network_id: str, vlan: int, ifname: str, ns: str) -> DnsmasqServer:
        key = (network_id, vlan)
        if key not in self._servers:
            self._servers[key] = DnsmasqServer(
                self.workdir / network_id / str(vlan), ifname, netns=ns
            )
        return self._servers[key]

    def _drop_segment(self, svc: NetworkService, seg: Segment) -> None:
        server = self._servers.pop((svc.network_id, seg.vlan), None)
        if server is not None:
            server.stop()
        kill_pidfile(self.workdir / svc.network_id / str(seg.vlan) / "dnsmasq.pid")
        ifname = svc.interface(seg)
        bridge = self.bridges.get(svc.module)
        if bridge is not None:
            self.ovsdb.delete_port(bridge, ifname)
        if _exists(ifname, self.switch_netns):
            _run(["ip", "-n", self.switch_netns, "link", "del", ifname])  # takes the peer
        shutil.rmtree(self.workdir / svc.network_id / str(seg.vlan), ignore_errors=True)


def _read_leak(record: Path) -> LeakPath | None:
    try:
        return LeakPath.from_json(record.read_text())
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _alive(pidfile: Path) -> bool:
    try:
        return Path(f"/proc/{int(pidfile.read_text().strip())}").exists()
    except (FileNotFoundError, ValueError):
        return False


def _exists(ifname: str, ns: str) -> bool:
    if ns not in netns.listnetns():
        return False
    result = subprocess.run(
        ["ip", "-n", ns, "link", "show", "dev", ifname], capture_output=True, check=False
    )
    return result.returncode == 0


def _run(cmd: list[str]) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DriverError(f"{' '.join(cmd[:6])}: {result.stderr.strip()[:300]}")
    return result.stdout
