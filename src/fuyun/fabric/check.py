"""The acceptance check a fabric passes before a module is handed over to tenants.

:mod:`fuyun.fabric.spec` validates each entry on its own; this module checks what
only the whole fabric can say: that names are unique and references resolve, that
every host is cabled to one ToR of a standard model, that every module has its
aggregation pair and every ToR is uplinked to it, and that no switch has more
cables than ports. It is a pure function of the spec, runs in one pass per list
(linear in the size of the fabric: 100,000 hosts take well under a second), and
reports *every* finding rather than stopping at the first, so one run of
``fuyun fabric check`` gives the whole to-do list.

Errors block a load into the store; warnings are advice (a single-homed ToR, a
technology its switch platform does not speak).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from typing import Protocol, TypeVar

from fuyun.domain.enums import L2Technology, SwitchPlatform, SwitchRole
from fuyun.fabric.spec import FabricSpec, SwitchSpec

_LISTS = (
    "server_models",
    "flavors",
    "sites",
    "interconnects",
    "modules",
    "module_links",
    "switches",
    "hosts",
)
_CAPACITIES = ("port_count", "mac_capacity", "arp_capacity", "vlan_capacity", "acl_capacity")
_AGGREGATION_PAIR = 2
#: The platform a multi-chassis technology needs; TRILL runs on both.
_TECHNOLOGY_PLATFORM = {
    L2Technology.VPC: SwitchPlatform.NXOS,
    L2Technology.IRF: SwitchPlatform.COMWARE,
}


#: An entry as (list name, index, entry name), the way a finding places it.
_Entry = tuple[str, int, str]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a fabric.

    ``place`` names the entry as ``list[index] (name)`` so it can be found in the file
    and in the store alike; ``field`` is the entry's field at fault.
    """

    severity: Severity
    place: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.place}.{self.field}: {self.message}"


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def check_fabric(spec: FabricSpec) -> list[Finding]:
    """Every finding about ``spec``, in file order (sites before hosts, entry by entry)."""
    check = _Check(spec)
    check.unique_names()
    check.unique_mgmt_addresses()
    check.unique_tor_ports()
    check.sites()
    check.interconnects()
    check.module_links()
    check.modules()
    check.switches()
    check.hosts()
    check.ports()
    check.found.sort(key=lambda item: item[0])
    return [finding for _, finding in check.found]


def place(list_name: str, index: int, name: str) -> str:
    """How a finding names an entry: ``hosts[12] (sz1-m01-t01-h13)``."""
    return f"{list_name}[{index}] ({name})"


class _Check:
    """One run: indexes built once, then one method per group of rules."""

    def __init__(self, spec: FabricSpec):
        self.spec = spec
        # Each finding with its sort key (list, index, order found), to report in file order.
        self.found: list[tuple[tuple[int, int, int], Finding]] = []
        # First entry of each name wins; later ones are reported as duplicates.
        self.site_by_name = _first_by_name(spec.sites)
        self.module_by_name = _first_by_name(spec.modules)
        self.switch_by_name = _first_by_name(spec.switches)
        self.model_by_name = _first_by_name(spec.server_models)

    def add(self, entry: _Entry, field: str, message: str, warning: bool = False) -> None:
        """Record a finding about ``entry``, given as (list name, index, entry name)."""
        list_name, index, name = entry
        severity = Severity.WARNING if warning else Severity.ERROR
        finding = Finding(severity, place(list_name, index, name), field, message)
        self.found.append(((_LISTS.index(list_name), index, len(self.found)), finding))

    def unique_names(self) -> None:
        for list_name in _LISTS:
            seen: dict[str, int] = {}
            for i, entry in enumerate(getattr(self.spec, list_name)):
                first = seen.setdefault(entry.name, i)
                if first != i:
                    where = (list_name, i, entry.name)
                    self.add(where, "name", f"duplicate name: also {list_name}[{first}]")
        # A host and a switch share one namespace: both are devices an operator names.
        switch_index = {s.name: i for i, s in reversed(list(enumerate(self.spec.switches)))}
        for i, host in enumerate(self.spec.hosts):
            if host.name in switch_index:
                where = ("hosts", i, host.name)
                other = f"switches[{switch_index[host.name]}]"
                self.add(where, "name", f"duplicate name: also {other}, a switch")

    def unique_tor_ports(self) -> None:
        """Two hosts cannot share one ToR interface: one cable, one host."""
        seen: dict[tuple[str, str], int] = {}
        for i, host in enumerate(self.spec.hosts):
            if host.tor is None or host.tor_port is None:
                continue
            first = seen.setdefault((host.tor, host.tor_port), i)
            if first != i:
                where = ("hosts", i, host.name)
                self.add(
                    where, "tor_port", f"{host.tor_port} of {host.tor} is also hosts[{first}]'s"
                )

    def unique_mgmt_addresses(self) -> None:
        seen: dict[str, tuple[str, int]] = {}
        for list_name in ("switches", "hosts"):
            for i, entry in enumerate(getattr(self.spec, list_name)):
                if entry.mgmt_address is None:
                    continue
                first = seen.setdefault(entry.mgmt_address, (list_name, i))
                if first != (list_name, i):
                    where = (list_name, i, entry.name)
                    other = f"{first[0]}[{first[1]}]"
                    self.add(where, "mgmt_address", f"{entry.mgmt_address} is also {other}'s")

    def sites(self) -> None:
        """Site aggregates do not overlap: IPAM carves every tenant subnet from one."""
        nets: list[tuple[int, int, IPv4Network | IPv6Network, int]] = sorted(
            (s.aggregate.version, int(s.aggregate.network_address), s.aggregate, i)
            for i, s in enumerate(self.spec.sites)
            if s.aggregate is not None
        )
        # Sweep in address order, remembering the aggregate that reaches furthest.
        widest: tuple[int, IPv4Network | IPv6Network, int] | None = None
        for version, _, net, i in nets:
            if widest is not None and widest[0] == version and widest[1].overlaps(net):
                other = self.spec.sites[widest[2]].name
                where = ("sites", i, self.spec.sites[i].name)
                self.add(where, "aggregate", f"{net} overlaps sites[{widest[2]}] ({other})")
            end = int(net.broadcast_address)
            if widest is None or widest[0] != version or end > int(widest[1].broadcast_address):
                widest = (version, net, i)

    def interconnects(self) -> None:
        for i, link in enumerate(self.spec.interconnects):
            where = ("interconnects", i, link.name)
            for field in ("site_a", "site_b"):
                site = getattr(link, field)
                if site not in self.site_by_name:
                    self.add(where, field, f"unknown site {site}")
            if link.site_a == link.site_b:
                self.add(where, "site_b", "an interconnect joins two distinct sites")

    def module_links(self) -> None:
        site_of = {m.name: m.site for m in self.spec.modules}
        for i, link in enumerate(self.spec.module_links):
            where = ("module_links", i, link.name)
            for field in ("module_a", "module_b"):
                module = getattr(link, field)
                if module not in site_of:
                    self.add(where, field, f"unknown module {module}")
            if link.module_a == link.module_b:
                self.add(where, "module_b", "a module link joins two distinct modules")
            elif link.module_a in site_of and link.module_b in site_of:
                a, b = site_of[link.module_a], site_of[link.module_b]
                if a != b:
                    self.add(
                        where,
                        "module_b",
                        f"a module link joins modules of one site ({link.module_a} is in {a},"
                        f" {link.module_b} in {b}); sites are joined by interconnects",
                    )

    def modules(self) -> None:
        aggregations: Counter[str] = Counter()
        tors: Counter[str] = Counter()
        for switch in self.spec.switches:
            counter = aggregations if switch.role is SwitchRole.AGGREGATION else tors
            counter[switch.module] += 1
        for i, module in enumerate(self.spec.modules):
            where = ("modules", i, module.name)
            if module.site not in self.site_by_name:
                self.add(where, "site", f"unknown site {module.site}")
            count = aggregations[module.name]
            if count < _AGGREGATION_PAIR:
                self.add(
                    where,
                    "switches",
                    f"{module.fabric_kind} module has {count} aggregation switch(es); "
                    f"it needs its aggregation pair ({_AGGREGATION_PAIR})",
                )
            if tors[module.name] == 0:
                self.add(where, "switches", "module has no ToR", warning=True)

    def switches(self) -> None:
        for i, switch in enumerate(self.spec.switches):
            where = ("switches", i, switch.name)
            module = self.module_by_name.get(switch.module)
            if module is None:
                self.add(where, "module", f"unknown module {switch.module}")
            elif module.l2_technology is not None:
                needed = _TECHNOLOGY_PLATFORM.get(module.l2_technology)
                if needed is not None and switch.platform is not needed:
                    msg = (
                        f"{module.l2_technology} needs {needed}; this switch runs {switch.platform}"
                    )
                    self.add(where, "platform", msg, warning=True)
            for capacity in _CAPACITIES:
                value = getattr(switch, capacity, None)
                if not isinstance(value, int) or value < 1:
                    self.add(where, capacity, f"capacity missing or not positive: {value!r}")
            if switch.role is SwitchRole.TOR:
                self._tor_uplinks(where, switch)
            else:
                self._aggregation_uplinks(where, switch)

    def _tor_uplinks(self, where: _Entry, tor: SwitchSpec) -> None:
        if not tor.uplinks:
            self.add(where, "uplinks", "a ToR needs uplinks to its module's aggregation pair")
            return
        good = 0
        for name in _repeated(tor.uplinks):
            self.add(where, "uplinks", f"uplink {name} listed twice")
        for name in dict.fromkeys(tor.uplinks):
            up = self.switch_by_name.get(name)
            if up is None:
                self.add(where, "uplinks", f"unknown switch {name}")
            elif up.role is not SwitchRole.AGGREGATION:
                self.add(where, "uplinks", f"{name} is a {up.role}, not an aggregation switch")
            elif up.module != tor.module:
                self.add(where, "uplinks", f"{name} is in module {up.module}, not {tor.module}")
            else:
                good += 1
        if good == 1 and len(set(tor.uplinks)) == 1:
            msg = "single-homed: uplinked to one aggregation switch, not the pair"
            self.add(where, "uplinks", msg, warning=True)

    def _aggregation_uplinks(self, where: _Entry, switch: SwitchSpec) -> None:
        # The core above aggregation is not modelled; only names that resolve are asked.
        for name in switch.uplinks:
            if name not in self.switch_by_name:
                self.add(where, "uplinks", f"unknown switch {name}")
            elif name == switch.name:
                self.add(where, "uplinks", "a switch cannot uplink to itself")

    def hosts(self) -> None:
        for i, host in enumerate(self.spec.hosts):
            if host.tor is not None and host.model in self.model_by_name:
                tor = self.switch_by_name.get(host.tor)
                if tor is not None and tor.role is SwitchRole.TOR:
                    continue  # the common case, kept cheap
            where = ("hosts", i, host.name)
            if host.model not in self.model_by_name:
                self.add(where, "model", f"{host.model} is not a standard model (server_models)")
            if host.tor is None:
                self.add(where, "tor", "not cabled: a host needs exactly one ToR")
                continue
            tor = self.switch_by_name.get(host.tor)
            if tor is None:
                self.add(where, "tor", f"unknown switch {host.tor}")
            elif tor.role is not SwitchRole.TOR:
                self.add(where, "tor", f"{host.tor} is an aggregation switch, not a ToR")

    def ports(self) -> None:
        """No switch has more cables than ports: hosts on a ToR, ToRs on an aggregation."""
        cables: Counter[str] = Counter(h.tor for h in self.spec.hosts if h.tor is not None)
        downlinks: defaultdict[str, set[str]] = defaultdict(set)
        for switch in self.spec.switches:
            if switch.role is SwitchRole.TOR:
                for up in switch.uplinks:
                    downlinks[up].add(switch.name)
        for up, tors in downlinks.items():
            cables[up] += len(tors)
        seen: set[str] = set()
        for i, switch in enumerate(self.spec.switches):
            if switch.name in seen:
                continue
            seen.add(switch.name)
            used, ports = cables[switch.name], switch.port_count
            if isinstance(ports, int) and used > ports:
                what = "hosts" if switch.role is SwitchRole.TOR else "ToRs"
                where = ("switches", i, switch.name)
                self.add(where, "port_count", f"{ports} ports but {used} {what} cabled")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def _first_by_name(entries: Sequence[_N]) -> dict[str, _N]:
    index: dict[str, _N] = {}
    for entry in entries:
        index.setdefault(entry.name, entry)
    return index


def _repeated(names: Sequence[str]) -> list[str]:
    return [name for name, n in Counter(names).items() if n > 1]
