"""Plugging a VM's tap into its host's virtual switch: a small hook chosen per host.

QEMU creates the tap (``-netdev tap,ifname=…``) in the network namespace it runs
in; the hook then attaches it to the host's switch and detaches it when the VM
goes. Three hooks exist, named by a spec string:

- ``none`` — leave the tap alone (a test of the hypervisor only, or an external agent);
- ``bridge:NAME`` — a Linux bridge in the host's namespace (untagged: one bridge
  per segment; this kernel has no bridge VLAN filtering);
- ``ovs:NAME`` — an Open vSwitch bridge: an access port tagged with the NIC's VLAN,
  with ``external_ids`` iface-id/attached-mac/vm-id as Neutron's OVS agent sets them.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from typing import Protocol

from fuyun.domain.errors import DriverError, InvalidInput
from fuyun.drivers.compute.base import NicSpec


class NicPlug(Protocol):
    def plug(self, tap: str, nic: NicSpec, vm_id: uuid.UUID) -> None: ...

    def unplug(self, tap: str) -> None: ...


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DriverError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")


def _ip(netns: str | None) -> list[str]:
    return ["ip", "-n", netns] if netns else ["ip"]


@dataclass(frozen=True)
class NoPlug:
    def plug(self, tap: str, nic: NicSpec, vm_id: uuid.UUID) -> None:
        return None

    def unplug(self, tap: str) -> None:
        return None


@dataclass(frozen=True)
class LinuxBridgePlug:
    bridge: str
    netns: str | None = None

    def plug(self, tap: str, nic: NicSpec, vm_id: uuid.UUID) -> None:
        _run([*_ip(self.netns), "link", "set", tap, "master", self.bridge, "up"])

    def unplug(self, tap: str) -> None:
        # Also called while the process lives (the source after a migration): take the
        # port out at once, so the bridge forgets the MAC there. A tap already gone is fine.
        subprocess.run(
            [*_ip(self.netns), "link", "set", tap, "nomaster"], capture_output=True, check=False
        )


@dataclass(frozen=True)
class OvsPlug:
    bridge: str
    db: str | None = None
    netns: str | None = None

    def _vsctl(self) -> list[str]:
        return ["ovs-vsctl", f"--db={self.db}"] if self.db else ["ovs-vsctl"]

    def plug(self, tap: str, nic: NicSpec, vm_id: uuid.UUID) -> None:
        # Open vSwitch opens a system port as it is; a tap left down passes no frame.
        _run([*_ip(self.netns), "link", "set", tap, "up"])
        _run(
            [
                *self._vsctl(), "--may-exist", "add-port", self.bridge, tap, f"tag={nic.vlan}",
                "--", "set", "Interface", tap,
                f"external_ids:iface-id={nic.port_id}",
                f"external_ids:attached-mac={nic.mac}",
                f"external_ids:vm-id={vm_id}",
            ]
        )  # fmt: skip
        # QEMU leaves a tap it made without a script down; a down port passes nothing.
        _run([*_ip(self.netns), "link", "set", tap, "up"])

    def unplug(self, tap: str) -> None:
        _run([*self._vsctl(), "--if-exists", "del-port", self.bridge, tap])


def make_plug(spec: str, netns: str | None, ovsdb: str | None = None) -> NicPlug:
    kind, _, name = spec.partition(":")
    if kind == "none" and not name:
        return NoPlug()
    if kind == "bridge" and name:
        return LinuxBridgePlug(name, netns)
    if kind == "ovs" and name:
        return OvsPlug(name, ovsdb, netns)
    raise InvalidInput(
        f"unknown NIC plug '{spec}'; use none, bridge:NAME or ovs:NAME", field="plug"
    )
