"""Fabric changes a plan weighs: a bigger layer 2, another module, another site.

Each is a pure function from one :class:`~fuyun.fabric.spec.FabricSpec` to a new
one, so a remedy or a what-if runs the same scenario on a changed copy and the
numbers can be set side by side. New objects copy an existing standard block
(a module is racked from one; a site is built like another), renamed.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from fuyun.domain.enums import FabricKind, L2Extension, L2Technology
from fuyun.domain.errors import InvalidInput
from fuyun.fabric.generator import CITIES
from fuyun.fabric.spec import FabricSpec, InterconnectSpec, ModuleSpec, SiteSpec
from fuyun.ipam.subnets import next_free_prefix


def to_switched(
    spec: FabricSpec, modules: list[str] | None = None, technology: str = "trill"
) -> FabricSpec:
    """Rebuild routed-clos modules (all, or the named ones) as switched CLOS."""
    tech = L2Technology(technology)
    names = {m.name for m in spec.modules}
    for name in modules or ():
        if name not in names:
            raise InvalidInput(f"no module '{name}' in the fabric", field="modules")
    changed = [
        m.model_copy(update={"fabric_kind": FabricKind.SWITCHED_CLOS, "l2_technology": tech})
        if m.fabric_kind is FabricKind.ROUTED_CLOS and (not modules or m.name in modules)
        else m
        for m in spec.modules
    ]
    return spec.model_copy(update={"modules": changed})


def routed_modules(spec: FabricSpec) -> list[str]:
    return [m.name for m in spec.modules if m.fabric_kind is FabricKind.ROUTED_CLOS]


def add_module(spec: FabricSpec, site: str, like: str | None = None) -> FabricSpec:
    """One more module in ``site``, a copy of ``like`` (default: the site's first module)."""
    mods = [m for m in spec.modules if m.site == site]
    if not mods:
        raise InvalidInput(f"no module in site '{site}' to copy", field="site")
    model = next((m for m in mods if m.name == like), mods[0]) if like else mods[0]
    taken = {m.name for m in spec.modules}
    n = len(mods) + 1
    while f"{site}-m{n:02d}" in taken:
        n += 1
    new = f"{site}-m{n:02d}"
    module, switches, hosts = _copy_module(spec, model, new, site)
    return spec.model_copy(
        update={
            "modules": [*spec.modules, module],
            "switches": [*spec.switches, *switches],
            "hosts": [*spec.hosts, *hosts],
        }
    )


def add_site(spec: FabricSpec, like: str, l2_extension: str = "otv") -> FabricSpec:
    """A new site built like ``like``, joined to it by an interconnect of ``l2_extension``."""
    base = next((s for s in spec.sites if s.name == like), None)
    if base is None:
        raise InvalidInput(f"no site '{like}' in the fabric", field="site")
    taken = {s.name for s in spec.sites}
    name = next(
        f"{code}{k}" for k in range(1, 100) for code, _ in CITIES if f"{code}{k}" not in taken
    )
    aggregate = _free_aggregate(spec, base.aggregate)
    site = SiteSpec(name=name, city="", description=f"a copy of {like}", aggregate=aggregate)
    modules, switches, hosts = [], [], []
    for m in (m for m in spec.modules if m.site == like):
        suffix = m.name[len(like) :] if m.name.startswith(like) else f"-{m.name}"
        mod, sws, hs = _copy_module(spec, m, f"{name}{suffix}", name)
        modules.append(mod)
        switches += sws
        hosts += hs
    link = InterconnectSpec(
        name=f"ic-{like}-{name}", site_a=like, site_b=name, l2_extension=L2Extension(l2_extension)
    )
    return spec.model_copy(
        update={
            "sites": [*spec.sites, site],
            "interconnects": [*spec.interconnects, link],
            "modules": [*spec.modules, *modules],
            "switches": [*spec.switches, *switches],
            "hosts": [*spec.hosts, *hosts],
        }
    )


def _free_aggregate(
    spec: FabricSpec, like: IPv4Network | IPv6Network | None
) -> IPv4Network | IPv6Network | None:
    if like is None:
        return None
    parent = IPv4Network("10.0.0.0/8") if like.version == 4 else None
    if parent is None or not like.subnet_of(parent):  # type: ignore[arg-type]
        return None
    taken = [s.aggregate for s in spec.sites if s.aggregate is not None]
    return next_free_prefix(parent, taken, like.prefixlen)


def _copy_module(
    spec: FabricSpec, model: ModuleSpec, new: str, site: str
) -> tuple[ModuleSpec, list, list]:  # type: ignore[type-arg]
    old = model.name
    module = model.model_copy(update={"name": new, "site": site})

    def rename(name: str) -> str:
        return new + name[len(old) :] if name.startswith(old) else f"{new}-{name}"

    switches = [
        sw.model_copy(
            update={
                "name": rename(sw.name),
                "module": new,
                "uplinks": [rename(u) for u in sw.uplinks],
                "mgmt_address": None,
            }
        )
        for sw in spec.switches
        if sw.module == old
    ]
    tors = {sw.name for sw in spec.switches if sw.module == old}
    hosts = [
        h.model_copy(update={"name": rename(h.name), "tor": rename(h.tor), "mgmt_address": None})
        for h in spec.hosts
        if h.tor in tors
    ]
    return module, switches, hosts
