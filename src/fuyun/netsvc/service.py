"""What the network node must run for one network: router ports and DHCP/DNS per segment.

A :class:`NetworkService` is derived from the store at the network's ``generation``
(:func:`fuyun.services.netservices.network_service`). Each VLAN segment of the network
becomes one router interface in the router of the network's VRF, carrying the gateway
address of every subnet of that segment, and one ``dnsmasq`` bound to that interface
only (a ``new-vlan`` growth segment is another L2 domain: its DHCP server must be
another socket, and dnsmasq binds one interface exclusively only when it is given one).
Every segment's dnsmasq knows every name of the network, so DNS answers the same
whichever segment a VM is on.

Names are short and derived from identifiers, so the same service always lands on the
same interfaces and two labs or VRFs never collide: ``fr`` + 11 hex digits of the VRF
for the router, ``fs`` + 11 hex digits of (network, VLAN) for an interface.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from fuyun.netsvc.scope import DhcpScope, SubnetScope


def _short(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:11]


def router_name(vrf_id: str) -> str:
    """The router (one per VRF) as a namespace suffix, at most 13 characters."""
    return f"fr{_short(vrf_id)}"


def interface_name(network_id: str, vlan: int) -> str:
    """A router interface in its router namespace; its veth peer on the switch has
    the same name (the two live in different namespaces)."""
    return f"fs{_short(network_id, str(vlan))}"


@dataclass(frozen=True)
class Segment:
    vlan: int
    subnets: tuple[SubnetScope, ...]

    def gateways(self) -> list[str]:
        """``address/prefix`` of every gateway on this segment (what the router carries)."""
        return [
            f"{s.gateway}/{s.cidr.split('/')[1]}" for s in self.subnets if s.gateway is not None
        ]


@dataclass(frozen=True)
class NetworkService:
    network_id: str
    generation: int
    vrf_id: str
    module: str
    segments: tuple[Segment, ...]
    scope: DhcpScope

    @property
    def router(self) -> str:
        return router_name(self.vrf_id)

    def interface(self, segment: Segment) -> str:
        return interface_name(self.network_id, segment.vlan)

    def segment_scope(self, segment: Segment) -> DhcpScope:
        """The scope one segment's dnsmasq serves: its own subnets, every name of the
        network, and its own IPv4 gateway as DNS server."""
        v4 = next((s.gateway for s in segment.subnets if s.gateway and ":" not in s.gateway), None)
        return replace(self.scope, subnets=segment.subnets, dns_server=v4 or self.scope.dns_server)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> NetworkService:
        raw = json.loads(text)
        return cls(
            network_id=raw["network_id"],
            generation=raw["generation"],
            vrf_id=raw["vrf_id"],
            module=raw["module"],
            segments=tuple(
                Segment(s["vlan"], tuple(SubnetScope(**x) for x in s["subnets"]))
                for s in raw["segments"]
            ),
            scope=DhcpScope.from_json(json.dumps(raw["scope"])),
        )
