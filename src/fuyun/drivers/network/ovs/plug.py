"""Making VM ports' interfaces exist where the switch can open them.

On a hypervisor the compute driver creates the VM's tap with the port's
interface name and the switch only has to add it: :class:`ExistingInterface`.
In the lab there is no hypervisor: :class:`NamespacePlugger` makes each port a
network namespace (the "VM") joined to the switch's namespace by a veth pair —
the switch end named like the port, the VM end ``eth0`` carrying the port's MAC
and addresses — with TX checksum offload off inside, since the userspace
datapath forwards the kernel's unfinished checksums as they are. The VM side
is configured once, when its veth is made: what runs inside a VM is the
guest's business, not the host switch's.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from pyroute2 import IPRoute, netns

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import PortBinding

PARALLEL = 8  # namespace set-up is mostly waiting on short-lived processes


class Plugger(Protocol):
    def hypervisor(self, host: str) -> bool:
        """Whether a hypervisor makes the host's VM interfaces (named by
        :func:`~fuyun.domain.hostports.hypervisor_ifname`); the switch then only adds them."""

    def plug(self, items: list[tuple[PortBinding, str]]) -> None:
        """Make each interface exist for the switch, with its binding's MAC and addresses."""

    def unplug(self, ifname: str) -> None:
        """Remove what :meth:`plug` made; a no-op when it is already gone."""

    def close(self) -> None: ...


class ExistingInterface:
    """The hypervisor makes the interface; the switch only adds it."""

    def hypervisor(self, host: str) -> bool:
        return True

    def plug(self, items: list[tuple[PortBinding, str]]) -> None:
        return None

    def unplug(self, ifname: str) -> None:
        return None

    def close(self) -> None:
        return None


class NamespacePlugger:
    """Each port a namespace ``{prefix}{ifname}`` wired into ``switch_netns`` — except on
    ``hypervisor_hosts``, whose VMs are real (QEMU runs in ``switch_netns`` and makes
    their taps there)."""

    def __init__(
        self, switch_netns: str, prefix: str, hypervisor_hosts: frozenset[str] = frozenset()
    ) -> None:
        self.switch_netns, self.prefix = switch_netns, prefix
        self.hypervisor_hosts = hypervisor_hosts
        self._sw: IPRoute | None = None

    def hypervisor(self, host: str) -> bool:
        return host in self.hypervisor_hosts

    def namespace(self, ifname: str) -> str:
        return f"{self.prefix}{ifname}"

    def _switch(self) -> IPRoute:
        if self._sw is None:
            try:
                self._sw = IPRoute(netns=self.switch_netns, flags=0)
            except FileNotFoundError as exc:
                raise DriverError(f"the lab's namespace {self.switch_netns} is gone") from exc
        return self._sw

    def close(self) -> None:
        if self._sw is not None:
            self._sw.close()
            self._sw = None

    def plug(self, items: list[tuple[PortBinding, str]]) -> None:
        sw = self._switch()
        fresh = [(b, n) for b, n in items if not sw.link_lookup(ifname=n)]
        if not fresh:
            return
        try:
            existing = set(netns.listnetns())
            stale = [self.namespace(n) for _, n in fresh if self.namespace(n) in existing]
            for ns in stale:  # a namespace without its veth: start it again from nothing
                netns.remove(ns)
            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(_run, [["ip", "netns", "add", self.namespace(n)] for _, n in fresh]))
            for _, ifname in fresh:
                peer = {"ifname": "eth0", "net_ns_fd": self.namespace(ifname)}
                sw.link("add", ifname=ifname, kind="veth", peer=peer)
                sw.link("set", index=sw.link_lookup(ifname=ifname)[0], state="up")
            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(lambda item: self._configure(*item), fresh))
        except DriverError:
            raise
        except Exception as exc:
            raise DriverError(f"cannot plug VMs into the lab: {exc}") from exc

    def _configure(self, binding: PortBinding, ifname: str) -> None:
        ns = self.namespace(ifname)
        script = [
            f"ip link set eth0 address {binding.mac.lower()}",
            "ip link set eth0 up",
            "ip link set lo up",
            "sysctl -qw net.ipv6.conf.eth0.accept_dad=0",
        ]
        v4 = [ip for ip in binding.ips if ":" not in ip]
        script += [f"ip addr replace {ip}/32 dev eth0" for ip in v4]
        script += [f"ip -6 addr replace {ip}/128 dev eth0 nodad" for ip in binding.ips if ":" in ip]
        if v4:
            script.append("ip route replace default dev eth0")
        script.append("ethtool -K eth0 tx off >/dev/null 2>&1 || true")
        _run(["ip", "netns", "exec", ns, "sh", "-ec", " && ".join(script)])

    def unplug(self, ifname: str) -> None:
        ns = self.namespace(ifname)
        try:
            sw = self._switch()
            for idx in sw.link_lookup(ifname=ifname):
                sw.link("del", index=idx)
        except DriverError:
            pass  # the switch namespace is gone, and every veth with it
        if ns in netns.listnetns():
            netns.remove(ns)


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DriverError(f"{' '.join(cmd[:4])}: {result.stderr.strip()[:300]}")
