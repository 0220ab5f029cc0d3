"""The scheduler's view of the fabric: hosts and switches with free capacity, indexed.

Built once from the store and kept current by the caller (``claim`` / ``release``
after every committed change), so a decision never rescans 100,000 hosts: it walks
the modules a request can reach, skips ToRs whose best host cannot fit, and
looks at hosts only below the ToRs that remain.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(slots=True)
class HostSlot:
    id: uuid.UUID
    name: str
    site: uuid.UUID
    module: uuid.UUID
    tor: uuid.UUID
    state: str
    hypervisor: str
    vcpus: int  # physical cores
    ram_mb: int
    disk_gb: int
    nic_mbps: int
    max_vms: int
    used_vcpus: int = 0
    used_ram_mb: int = 0
    used_disk_gb: int = 0
    used_bandwidth_mbps: int = 0
    vm_count: int = 0


@dataclass(slots=True)
class SwitchSlot:
    id: uuid.UUID
    name: str
    module: uuid.UUID
    role: str
    mac_capacity: int
    arp_capacity: int
    vlan_capacity: int
    used_mac: int = 0
    used_arp: int = 0
    used_vlans: int = 0
    # Guaranteed Mbit/s through the switch's uplinks: capacity and what is admitted.
    uplink_mbps: int = 0
    used_bandwidth_mbps: int = 0


@dataclass(frozen=True, slots=True)
class Demand:
    """Per VM. ``bandwidth_mbps`` (the flavor's) counts on the host's NICs;
    ``qos_mbps`` (its ports' QoS guarantees) counts there and on the ToR uplink."""

    vcpus: int
    ram_mb: int
    disk_gb: int
    bandwidth_mbps: int = 0
    qos_mbps: int = 0


@dataclass(frozen=True)
class ModuleInfo:
    id: uuid.UUID
    name: str
    site: uuid.UUID
    switched: bool
    aggregation: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class NetworkNeed:
    """What attaching one port to a network requires of a host's switches."""

    network_id: uuid.UUID
    module: uuid.UUID
    switched: bool
    span_ports: dict[uuid.UUID, int]  # ToR -> ports of the segment below it
    ips: int = 1
    # Other modules the VLAN may reach over an L2 extension (a move keeping the IP).
    extended: frozenset[uuid.UUID] = frozenset()

    @property
    def ports(self) -> int:
        return sum(self.span_ports.values())


@dataclass(frozen=True)
class GroupNeed:
    """An affinity or anti-affinity group the VM joins."""

    group_id: uuid.UUID
    policy: str  # affinity | anti-affinity
    level: str  # host | tor | module | site
    members_at: dict[uuid.UUID, int]  # placement unit (host/ToR/module/site id) -> members


@dataclass
class Cluster:
    """Hosts and switches by id, with the indexes the filters walk."""

    cpu_ratio: float = 4.0
    ram_ratio: float = 1.0
    hosts: dict[uuid.UUID, HostSlot] = field(default_factory=dict)
    switches: dict[uuid.UUID, SwitchSlot] = field(default_factory=dict)
    modules: dict[uuid.UUID, ModuleInfo] = field(default_factory=dict)
    hosts_by_tor: dict[uuid.UUID, list[HostSlot]] = field(default_factory=lambda: defaultdict(list))
    tors_by_module: dict[uuid.UUID, list[uuid.UUID]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Per ToR: the most free vCPU slots of any active host below it (pruning bound).
    tor_best: dict[uuid.UUID, int] = field(default_factory=dict)
    module_vms: dict[uuid.UUID, int] = field(default_factory=lambda: defaultdict(int))
    module_hosts: dict[uuid.UUID, int] = field(default_factory=lambda: defaultdict(int))

    def add_host(self, host: HostSlot) -> None:
        self.hosts[host.id] = host
        below = self.hosts_by_tor[host.tor]
        if not below:
            self.tors_by_module[host.module].append(host.tor)
        below.append(host)
        self.module_vms[host.module] += host.vm_count
        self.module_hosts[host.module] += 1
        self._refresh_tor(host.tor)

    def free_vcpus(self, h: HostSlot) -> int:
        if h.state != "active" or h.vm_count >= h.max_vms:
            return 0
        return int(h.vcpus * self.cpu_ratio) - h.used_vcpus

    def fit(self, h: HostSlot, d: Demand) -> int:
        """How many more VMs of demand ``d`` the host takes, by every dimension it counts."""
        if h.state != "active":
            return 0
        room = [h.max_vms - h.vm_count, self.free_vcpus(h) // max(d.vcpus, 1)]
        if d.ram_mb:
            room.append((int(h.ram_mb * self.ram_ratio) - h.used_ram_mb) // d.ram_mb)
        if d.disk_gb:
            room.append((h.disk_gb - h.used_disk_gb) // d.disk_gb)
        if d.bandwidth_mbps + d.qos_mbps:
            room.append((h.nic_mbps - h.used_bandwidth_mbps) // (d.bandwidth_mbps + d.qos_mbps))
        return max(0, min(room))

    def tor_room(self, tor: uuid.UUID, d: Demand) -> int:
        """How many more VMs of demand ``d`` fit below the ToR (switch tables aside)."""
        return sum(self.fit(h, d) for h in self.hosts_by_tor.get(tor, ()))

    def _refresh_tor(self, tor: uuid.UUID) -> None:
        self.tor_best[tor] = max((self.free_vcpus(h) for h in self.hosts_by_tor[tor]), default=0)

    def claim(self, host_id: uuid.UUID, d: Demand, vms: int = 1) -> None:
        h = self.hosts[host_id]
        h.used_vcpus += d.vcpus * vms
        h.used_ram_mb += d.ram_mb * vms
        h.used_disk_gb += d.disk_gb * vms
        h.used_bandwidth_mbps += (d.bandwidth_mbps + d.qos_mbps) * vms
        h.vm_count += vms
        tor = self.switches.get(h.tor)
        if tor is not None:
            tor.used_bandwidth_mbps += d.qos_mbps * vms
        self.module_vms[h.module] += vms
        self._refresh_tor(h.tor)

    def release(self, host_id: uuid.UUID, d: Demand, vms: int = 1) -> None:
        self.claim(
            host_id, Demand(d.vcpus, d.ram_mb, d.disk_gb, d.bandwidth_mbps, d.qos_mbps), -vms
        )

    def set_state(self, host_id: uuid.UUID, state: str) -> None:
        h = self.hosts[host_id]
        h.state = state
        self._refresh_tor(h.tor)

    def sync_host(self, fresh: HostSlot) -> None:
        """Replace a host's numbers with the store's (after a lost claim race)."""
        old = self.hosts.get(fresh.id)
        if old is None:
            self.add_host(fresh)
            return
        self.module_vms[old.module] += fresh.vm_count - old.vm_count
        for name in (
            "state",
            "max_vms",
            "used_vcpus",
            "used_ram_mb",
            "used_disk_gb",
            "used_bandwidth_mbps",
            "vm_count",
        ):
            setattr(old, name, getattr(fresh, name))
        self._refresh_tor(old.tor)

    def add_switch_use(self, switch_id: uuid.UUID, mac: int, arp: int, vlans: int) -> None:
        sw = self.switches[switch_id]
        sw.used_mac += mac
        sw.used_arp += arp
        sw.used_vlans += vlans
