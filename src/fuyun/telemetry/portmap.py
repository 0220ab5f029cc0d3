"""Who owns a frame: the port map as an index from (VLAN, MAC, IP) to tenant, VM and network.

The index is built from the store's live bindings (every port with a VM on a
host) and rebuilt when they change, so a migrated VM's traffic is attributed to
its new host from the next refresh on. Lookups are dictionary hits on the raw
``bytes`` the decoder returns, with no text conversion on the hot path.

Order of evidence: (VLAN, MAC) first — MACs are unique in the store, the VLAN
guards against a MAC reused on another segment by a stale sample; then the MAC
alone (an access port's frames carry no tag, and OVS exports VLAN 0 for them);
then (VLAN, IP) and the IP alone when exactly one port holds it (tenants'
ranges overlap across VRFs, so an address shared by two ports proves nothing).
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Binding:
    """One VM port where it is now."""

    port_id: uuid.UUID
    vm_id: uuid.UUID
    vm: str
    tenant_id: uuid.UUID
    tenant: str
    network_id: uuid.UUID
    network: str
    vlan: int
    mac: str
    ips: tuple[str, ...]
    host: str | None


class PortIndex:
    """An immutable lookup structure over a set of bindings; rebuilt, never patched."""

    def __init__(self, bindings: list[Binding], agents: dict[bytes, str] | None = None):
        self.bindings = bindings
        # Exporter address (raw bytes as in the datagram) -> host name, for dedup.
        self.agents = agents or {}
        self.tenants = {b.tenant_id: b.tenant for b in bindings}
        self.by_vlan_mac: dict[tuple[int, bytes], Binding] = {}
        self.by_mac: dict[bytes, Binding] = {}
        self.by_vlan_ip: dict[tuple[int, bytes], Binding] = {}
        self.by_ip: dict[bytes, Binding] = {}
        shared: set[bytes] = set()
        for b in bindings:
            mac = bytes.fromhex(b.mac.replace(":", "").replace("-", ""))
            self.by_vlan_mac[(b.vlan, mac)] = b
            self.by_mac[mac] = b
            for ip in b.ips:
                raw = ipaddress.ip_address(ip).packed
                self.by_vlan_ip[(b.vlan, raw)] = b
                if raw in self.by_ip:
                    shared.add(raw)
                self.by_ip[raw] = b
        for raw in shared:
            del self.by_ip[raw]

    def __len__(self) -> int:
        return len(self.bindings)

    def lookup(self, vlan: int, mac: bytes, ip: bytes) -> Binding | None:
        """The port a frame with this VLAN, MAC and IP belongs to, or ``None``."""
        b = self.by_vlan_mac.get((vlan, mac))
        if b is not None:
            return b
        b = self.by_mac.get(mac)
        if b is not None and (vlan == 0 or b.vlan == vlan):
            return b
        if not ip:
            return None
        b = self.by_vlan_ip.get((vlan, ip))
        if b is not None:
            return b
        b = self.by_ip.get(ip)
        if b is not None and (vlan == 0 or b.vlan == vlan):
            return b
        return None
