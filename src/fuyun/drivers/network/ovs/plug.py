"""Making a VM port's interface exist where the switch can open it.

On a hypervisor the compute driver creates the VM's tap with the port's
interface name and the switch only has to add it: :class:`ExistingInterface`.
In the lab there is no hypervisor: :class:`NamespacePlugger` makes each port a
network namespace (the "VM") joined to the switch's namespace by a veth pair —
the switch end named like the port, the VM end carrying the port's MAC and
addresses — with TX checksum offload off inside, since the userspace datapath
forwards the kernel's unfinished checksums as they are.
"""

from __future__ import annotations

import subprocess
from typing import Protocol

from pyroute2 import IPRoute, netns

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import PortBinding


class Plugger(Protocol):
    def plug(self, binding: PortBinding, ifname: str) -> None:
        """Make ``ifname`` exist for the switch, with the binding's MAC and addresses."""

    def unplug(self, ifname: str) -> None:
        """Remove what :meth:`plug` made; a no-op when it is already gone."""


class ExistingInterface:
    """The hypervisor made the interface; the switch only adds it."""

    def plug(self, binding: PortBinding, ifname: str) -> None:
        return None

    def unplug(self, ifname: str) -> None:
        return None


class NamespacePlugger:
    """Each port a namespace ``{prefix}{ifname}`` wired into ``switch_netns``."""

    def __init__(self, switch_netns: str, prefix: str) -> None:
        self.switch_netns, self.prefix = switch_netns, prefix

    def namespace(self, ifname: str) -> str:
        return f"{self.prefix}{ifname}"

    def plug(self, binding: PortBinding, ifname: str) -> None:
        ns = self.namespace(ifname)
        try:
            if ns not in netns.listnetns():
                netns.create(ns)
            with IPRoute(netns=self.switch_netns, flags=0) as sw:
                if not sw.link_lookup(ifname=ifname):
                    with IPRoute(netns=ns, flags=0) as vm:
                        for stale in vm.link_lookup(ifname="eth0"):
                            vm.link("del", index=stale)
                    sw.link(
                        "add", ifname=ifname, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns}
                    )
                sw.link("set", index=sw.link_lookup(ifname=ifname)[0], state="up")
            with IPRoute(netns=ns, flags=0) as vm:
                self._configure(vm, binding)
        except DriverError:
            raise
        except Exception as exc:
            raise DriverError(f"cannot plug {ifname} into the lab: {exc}") from exc
        self._offload_off(ns)

    def _configure(self, vm: IPRoute, binding: PortBinding) -> None:
        [idx] = vm.link_lookup(ifname="eth0")
        link = vm.link("get", index=idx)[0]
        if link.get("address") != binding.mac.lower():
            vm.link("set", index=idx, state="down")
            vm.link("set", index=idx, address=binding.mac.lower())
        vm.link("set", index=idx, state="up")
        vm.link("set", index=vm.link_lookup(ifname="lo")[0], state="up")
        have = {a.get("address") for a in vm.get_addr(index=idx)}
        for ip in binding.ips:
            if ip not in have:
                v6 = ":" in ip
                vm.addr("add", index=idx, address=ip, prefixlen=128 if v6 else 32)
        routes = {(r.get("family"), r.get("dst_len")) for r in vm.get_routes(oif=idx)}
        if any(":" not in ip for ip in binding.ips) and (2, 0) not in routes:
            vm.route("add", dst="0.0.0.0/0", oif=idx, scope=253)

    def _offload_off(self, ns: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"],
            capture_output=True,
            check=False,
        )

    def unplug(self, ifname: str) -> None:
        ns = self.namespace(ifname)
        try:
            with IPRoute(netns=self.switch_netns, flags=0) as sw:
                for idx in sw.link_lookup(ifname=ifname):
                    sw.link("del", index=idx)
        except FileNotFoundError:
            pass
        if ns in netns.listnetns():
            netns.remove(ns)
