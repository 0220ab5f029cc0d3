"""Seeded, deterministic simulated fabrics, from a test-sized one to the seed's 2010 fleet.

Every number that shapes a fabric is a field of :class:`GeneratorParams`; a preset is
just a named set of them. The same parameters and seed always give an equal
:class:`~fuyun.fabric.spec.FabricSpec` (one :class:`random.Random` drawn in a fixed
order), so a benchmark or a failing test can be reproduced from two words.

Layout (names and addresses are only labels; nothing is ever contacted):

* sites ``sz1``, ``sh1``, … in the cities of :data:`CITIES`, each with a tenant
  aggregate carved out of ``10.0.0.0/8`` for IPAM;
* modules ``sz1-m01`` — routed-clos or switched-clos (vpc, irf or trill), one platform,
  ToR hardware, server model and VM density per module, as modules are racked from
  one standard block;
* an aggregation pair ``sz1-m01-agg1``/``-agg2`` and ToRs ``sz1-m01-t01`` … uplinked to
  both, hosts ``sz1-m01-t01-h01`` … under each ToR;
* management addresses counted up from ``172.16.0.0/12``, each module starting on a
  fresh /24 so a module's addresses read as a block;
* interconnects from the first site to every other and between neighbours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

from fuyun.domain.enums import (
    EnforcementPoint,
    FabricKind,
    HostState,
    Hypervisor,
    L2Extension,
    L2Technology,
    SwitchPlatform,
    SwitchRole,
    VSwitchKind,
)
from fuyun.fabric.catalog import FLAVORS, SERVER_MODELS
from fuyun.fabric.spec import (
    FabricSpec,
    HostSpec,
    InterconnectSpec,
    ModuleSpec,
    SiteSpec,
    SwitchSpec,
)

#: (site code, city) in the order sites are opened.
CITIES: tuple[tuple[str, str], ...] = (
    ("sz", "Shenzhen"),
    ("sh", "Shanghai"),
    ("tj", "Tianjin"),
    ("cd", "Chengdu"),
    ("bj", "Beijing"),
    ("gz", "Guangzhou"),
    ("hz", "Hangzhou"),
    ("wh", "Wuhan"),
    ("xa", "Xi'an"),
    ("nj", "Nanjing"),
    ("cq", "Chongqing"),
    ("hk", "Hong Kong"),
)

_MGMT_BASE = 172 << 24 | 16 << 16  # 172.16.0.0/12: room for ~1M addresses
_MGMT_SIZE = 1 << 20
_TENANT_SPACE = IPv4Network("10.0.0.0/8")
_MAX_SITES = 256

Weights = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class GeneratorParams:
    """Everything that shapes a simulated fabric. Ranges are inclusive ``(low, high)``.

    Raises ``ValueError`` on construction when a value is out of range, so a bad
    preset fails where it is written, not halfway through a generation.
    """

    name: str
    description: str = ""
    sites: int = 2
    modules_per_site: int = 4
    tors_per_module: tuple[int, int] = (20, 20)
    hosts_per_tor: tuple[int, int] = (40, 40)
    #: Share of modules built as routed CLOS; the rest are switched CLOS. With two
    #: or more modules there is always at least one of each kind.
    routed_share: float = 0.3
    l2_technologies: Weights = (("vpc", 0.5), ("irf", 0.3), ("trill", 0.2))
    #: Share of routed-clos and trill modules on Comware (vpc is NX-OS, irf Comware).
    comware_share: float = 0.4
    server_models: Weights = (
        ("std-2010-1g", 0.5),
        ("std-2010-10g", 0.4),
        ("std-2010-storage", 0.1),
    )
    density: tuple[int, int] = (4, 10)
    enforcement_points: Weights = (("vswitch", 0.7), ("tor-acl", 0.2), ("vm-iptables", 0.1))
    xen_share: float = 0.3
    linux_bridge_share: float = 0.3
    interconnects: Weights = (("otv", 0.3), ("vpls", 0.2), ("direct", 0.2), ("none", 0.3))
    tor_port_count: int = 48
    tor_mac: tuple[int, ...] = (16_384, 32_768)
    tor_arp: tuple[int, ...] = (8_192, 16_384)
    tor_vlans: tuple[int, ...] = (1_000, 2_000, 4_000)
    tor_acl: tuple[int, ...] = (2_000, 3_000, 4_000)
    agg_mac: int = 131_072
    agg_arp: int = 65_536
    agg_vlans: int = 4_000
    agg_acl: int = 16_000

    def __post_init__(self) -> None:
        _require(1 <= self.sites <= _MAX_SITES, f"sites must be 1..{_MAX_SITES}")
        _require(self.modules_per_site >= 1, "modules_per_site must be at least 1")
        _require_range(self.tors_per_module, "tors_per_module", 1, 999)
        _require_range(self.hosts_per_tor, "hosts_per_tor", 1, self.tor_port_count)
        _require_range(self.density, "density", 1, 64)
        _require(0.0 <= self.routed_share <= 1.0, "routed_share must be within 0..1")
        per_module = self.tors_per_module[1] * (self.hosts_per_tor[1] + 1) + 2
        _require(
            self.modules * (per_module * 256 // 254 + 257) <= _MGMT_SIZE,
            "too many hosts and switches for the 172.16.0.0/12 management space",
        )
        for weights in (
            self.l2_technologies,
            self.server_models,
            self.enforcement_points,
            self.interconnects,
        ):
            _require(bool(weights) and all(w >= 0 for _, w in weights), "weights must be >= 0")
        _require(
            {n for n, _ in self.server_models} <= {m.name for m in SERVER_MODELS},
            "server_models must name catalog models",
        )

    @property
    def modules(self) -> int:
        return self.sites * self.modules_per_site

    @property
    def max_hosts(self) -> int:
        return self.modules * self.tors_per_module[1] * self.hosts_per_tor[1]

    @property
    def min_hosts(self) -> int:
        return self.modules * self.tors_per_module[0] * self.hosts_per_tor[0]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _require_range(value: tuple[int, int], name: str, low: int, high: int) -> None:
    _require(low <= value[0] <= value[1] <= high, f"{name} must be ({low}..{high}) low <= high")


PRESETS: dict[str, GeneratorParams] = {
    p.name: p
    for p in (
        GeneratorParams(
            name="small",
            description="for tests: one routed and one switched module",
            sites=2,
            modules_per_site=1,
            tors_per_module=(2, 3),
            hosts_per_tor=(2, 4),
            routed_share=0.5,
            interconnects=(("otv", 1.0),),
        ),
        GeneratorParams(
            name="default",
            description="a laptop-sized fleet",
        ),
        GeneratorParams(
            name="tencent-2010",
            description="the seed's fleet at the end of 2010",
            sites=5,
            modules_per_site=10,
            tors_per_module=(50, 50),
        ),
    )
}


def list_presets() -> list[GeneratorParams]:
    """The presets, smallest first."""
    return sorted(PRESETS.values(), key=lambda p: p.max_hosts)


def generate(preset: str | GeneratorParams, seed: int = 0) -> FabricSpec:
    """Generate the fabric of ``preset`` (a name from :data:`PRESETS` or parameters).

    Deterministic: equal inputs give an equal spec. Raises ``KeyError`` for an
    unknown preset name.
    """
    params = PRESETS[preset] if isinstance(preset, str) else preset
    return _Builder(params, random.Random(seed)).build()


class _Builder:
    """One generation run; holds the random stream and the management-address cursor."""

    def __init__(self, params: GeneratorParams, rng: random.Random):
        self.p = params
        self.rng = rng
        self.mgmt = _MGMT_BASE
        self.switches: list[SwitchSpec] = []
        self.hosts: list[HostSpec] = []

    def build(self) -> FabricSpec:
        sites = self._sites()
        modules = self._modules(sites)
        for module in modules:
            self._populate(module)
        return FabricSpec(
            name=self.p.name,
            server_models=list(SERVER_MODELS),
            flavors=list(FLAVORS),
            sites=sites,
            interconnects=self._interconnects(sites),
            modules=modules,
            switches=self.switches,
            hosts=self.hosts,
        )

    def _sites(self) -> list[SiteSpec]:
        bits = max(3, math.ceil(math.log2(self.p.sites)))
        aggregates = _TENANT_SPACE.subnets(prefixlen_diff=bits)
        sites = []
        for i in range(self.p.sites):
            code, city = CITIES[i % len(CITIES)]
            sites.append(
                SiteSpec(
                    name=f"{code}{i // len(CITIES) + 1}",
                    city=city,
                    description=f"simulated data center in {city}",
                    aggregate=next(aggregates),
                )
            )
        return sites

    def _interconnects(self, sites: Sequence[SiteSpec]) -> list[InterconnectSpec]:
        """The first site to every other (a hub) plus a ring of neighbours."""
        pairs: list[tuple[int, int]] = [(0, j) for j in range(1, len(sites))]
        pairs += [(i, i + 1) for i in range(1, len(sites) - 1)]
        if len(sites) > 3:
            pairs.append((1, len(sites) - 1))
        links = []
        for a, b in pairs:
            ext = L2Extension(self._pick(self.p.interconnects))
            links.append(
                InterconnectSpec(
                    name=f"ic-{sites[a].name}-{sites[b].name}",
                    site_a=sites[a].name,
                    site_b=sites[b].name,
                    l2_extension=ext,
                    bandwidth_gbps=self.rng.choice((10, 40)),
                )
            )
        return links

    def _modules(self, sites: Sequence[SiteSpec]) -> list[ModuleSpec]:
        total = len(sites) * self.p.modules_per_site
        routed_count = round(self.p.routed_share * total)
        if total >= 2 and 0.0 < self.p.routed_share < 1.0:
            routed_count = min(max(routed_count, 1), total - 1)
        routed = set(self.rng.sample(range(total), routed_count))
        width = max(2, len(str(self.p.modules_per_site)))
        modules = []
        for i in range(total):
            site = sites[i // self.p.modules_per_site]
            number = i % self.p.modules_per_site + 1
            kind = FabricKind.ROUTED_CLOS if i in routed else FabricKind.SWITCHED_CLOS
            tech = None
            if kind is FabricKind.SWITCHED_CLOS:
                tech = L2Technology(self._pick(self.p.l2_technologies))
            modules.append(
                ModuleSpec(
                    name=f"{site.name}-m{number:0{width}d}",
                    site=site.name,
                    fabric_kind=kind,
                    l2_technology=tech,
                    enforcement_point=EnforcementPoint(self._pick(self.p.enforcement_points)),
                )
            )
        return modules

    def _platform(self, module: ModuleSpec) -> SwitchPlatform:
        # Multi-chassis technologies are vendor-bound: vPC is Cisco, IRF is H3C.
        if module.l2_technology is L2Technology.VPC:
            return SwitchPlatform.NXOS
        if module.l2_technology is L2Technology.IRF:
            return SwitchPlatform.COMWARE
        comware = self.rng.random() < self.p.comware_share
        return SwitchPlatform.COMWARE if comware else SwitchPlatform.NXOS

    def _populate(self, module: ModuleSpec) -> None:
        """Add the module's aggregation pair, ToRs and hosts."""
        p, rng = self.p, self.rng
        self.mgmt = (self.mgmt + 255) & ~255  # each module starts on a fresh /24
        platform = self._platform(module)
        tors = rng.randint(*p.tors_per_module)
        tor_caps = {
            "mac_capacity": rng.choice(p.tor_mac),
            "arp_capacity": rng.choice(p.tor_arp),
            "vlan_capacity": rng.choice(p.tor_vlans),
            "acl_capacity": rng.choice(p.tor_acl),
        }
        model = self._pick(p.server_models)
        max_vms = rng.randint(*p.density)
        hypervisor = Hypervisor.XEN if rng.random() < p.xen_share else Hypervisor.KVM
        bridge = rng.random() < p.linux_bridge_share
        vswitch = VSwitchKind.LINUX_BRIDGE if bridge else VSwitchKind.OVS

        aggs = [f"{module.name}-agg{n}" for n in (1, 2)]
        for agg in aggs:
            self.switches.append(
                SwitchSpec(
                    name=agg,
                    module=module.name,
                    role=SwitchRole.AGGREGATION,
                    platform=platform,
                    mgmt_address=self._next_mgmt(),
                    port_count=max(384, tors),
                    uplink_gbps=160,
                    mac_capacity=p.agg_mac,
                    arp_capacity=p.agg_arp,
                    vlan_capacity=p.agg_vlans,
                    acl_capacity=p.agg_acl,
                )
            )
        tor_width = max(2, len(str(p.tors_per_module[1])))
        host_width = max(2, len(str(p.hosts_per_tor[1])))
        for t in range(1, tors + 1):
            tor = f"{module.name}-t{t:0{tor_width}d}"
            self.switches.append(
                SwitchSpec(
                    name=tor,
                    module=module.name,
                    role=SwitchRole.TOR,
                    platform=platform,
                    mgmt_address=self._next_mgmt(),
                    port_count=p.tor_port_count,
                    uplink_gbps=40,
                    uplinks=aggs,
                    **tor_caps,
                )
            )
            for h in range(1, rng.randint(*p.hosts_per_tor) + 1):
                self.hosts.append(
                    HostSpec(
                        name=f"{tor}-h{h:0{host_width}d}",
                        tor=tor,
                        model=model,
                        mgmt_address=self._next_mgmt(),
                        hypervisor=hypervisor,
                        vswitch=vswitch,
                        max_vms=max_vms,
                        state=HostState.ACTIVE,
                    )
                )

    def _next_mgmt(self) -> str:
        self.mgmt += 1
        if self.mgmt & 255 in (0, 255):  # skip network and broadcast-looking addresses
            self.mgmt += 1 if self.mgmt & 255 == 0 else 2
        a = self.mgmt
        return f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"

    def _pick(self, weights: Weights) -> str:
        names = [n for n, _ in weights]
        return self.rng.choices(names, weights=[w for _, w in weights])[0]
