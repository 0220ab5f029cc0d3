"""What a plan answers, as typed values with a JSON form.

``Exhaustion`` is the first time a resource refused a request in a scope (a
module, a site, the whole fleet), with the step and the scheduler's reason;
``StepStats`` is one row of utilization over time; ``SwitchLoad`` is one switch's
tables at the end; ``AddressWaste`` is what the growth strategy cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Resource keys and the words an operator reads.
RESOURCES: dict[str, str] = {
    "vcpu": "vCPU",
    "ram": "RAM",
    "disk": "disk",
    "density": "VM density (1pXv)",
    "hosts": "active hosts",
    "nic": "NIC guarantees",
    "l2-reach": "L2 reach (VLAN span)",
    "tor-mac": "ToR MAC table",
    "tor-arp": "ToR ARP table",
    "tor-vlans": "ToR VLAN table",
    "agg-mac": "aggregation MAC table",
    "agg-arp": "aggregation ARP table",
    "agg-vlans": "aggregation VLAN table",
    "anti-affinity": "anti-affinity",
    "subnet": "subnet (growth refused)",
    "vlan-pool": "module VLAN pool",
    "ip-space": "IP space",
}
#: Exhausting these refuses one network, not the module: the tenant opens another network.
NETWORK_SCOPED = frozenset({"l2-reach", "tor-mac", "tor-arp", "tor-vlans", "subnet"})


@dataclass(frozen=True)
class Exhaustion:
    scope: str  # module | site | fleet
    name: str
    resource: str
    step: int
    detail: str

    @property
    def label(self) -> str:
        return RESOURCES.get(self.resource, self.resource)


@dataclass(frozen=True)
class Usage:
    """Used and capacity of one dimension; ``pct`` is rounded for reading."""

    used: int
    capacity: int

    @property
    def pct(self) -> float:
        return round(100.0 * self.used / self.capacity, 2) if self.capacity else 0.0


@dataclass(frozen=True)
class StepStats:
    step: int
    vms: int
    unplaced: int
    vcpu: Usage
    ram: Usage
    density: Usage
    nic: Usage
    ip: Usage  # addresses allocated of those carved
    space: Usage  # addresses carved of the site aggregates
    vlans: Usage  # VLANs used of the module pools
    tor_mac_max: float
    agg_mac_max: float
    arp_max: float


@dataclass(frozen=True)
class SwitchLoad:
    name: str
    module: str
    role: str
    vlans: Usage
    mac: Usage
    arp: Usage

    @property
    def worst(self) -> float:
        return max(self.vlans.pct, self.mac.pct, self.arp.pct)


@dataclass(frozen=True)
class AddressWaste:
    growth: str
    networks: int
    subnets: int
    growth_subnets: int
    growth_vlans: int
    allocated: int
    carved: int
    reserved: int
    boundary_loss: int  # reserved addresses of growth subnets: the strategy's cost
    free: int  # carved but never handed out


@dataclass(frozen=True)
class SpanStats:
    networks: int
    segments: int
    max_tors: int
    mean_tors: float


@dataclass
class PlanResult:
    fabric: str
    scenario: str
    steps: int
    demanded: int
    placed: int
    unplaced: int
    first_unplaced_step: int | None
    exhaustion: list[Exhaustion]
    timeline: list[StepStats]
    modules: list[dict[str, Any]]
    switches: list[SwitchLoad]
    addresses: AddressWaste
    spans: SpanStats
    spills: int
    elapsed_s: float = 0.0
    strategies: list[AddressWaste] = field(default_factory=list)
    remedies: list[dict[str, Any]] = field(default_factory=list)
    nplus1: dict[str, Any] | None = None

    def first(self, scope: str) -> dict[str, Exhaustion]:
        """The first exhaustion of each module (or site), by name."""
        out: dict[str, Exhaustion] = {}
        for e in self.exhaustion:
            if e.scope == scope and e.name not in out:
                out[e.name] = e
        return out

    def to_dict(self, *, switches: int = 50) -> dict[str, Any]:
        data = asdict(self)
        data["exhaustion"] = [dict(asdict(e), label=e.label) for e in self.exhaustion]
        data["first_by_module"] = {k: asdict(v) for k, v in sorted(self.first("module").items())}
        data["first_by_site"] = {k: asdict(v) for k, v in sorted(self.first("site").items())}
        ranked = sorted(self.switches, key=lambda s: (-s.worst, s.name))[:switches]
        data["switches"] = [dict(asdict(s), worst=s.worst) for s in ranked]
        for row in data["timeline"]:
            for value in row.values():
                if isinstance(value, dict):
                    value["pct"] = Usage(value["used"], value["capacity"]).pct
        return data
