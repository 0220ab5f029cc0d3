"""A host's interface on its ToR: the port a trunk to that host is configured on.

The fabric file may name it (``hosts[].tor_port``, e.g. ``Ethernet1/7``); when it
does not, it is derived from the host's index under its ToR — the n-th host cabled
to a ToR (in file order) sits on the ToR's n-th host-facing port — in the ToR
platform's naming, skipping names other hosts of that ToR were given explicitly.
Deterministic, so reloading a file never moves a host to another interface; the
store keeps the resolved name, and an export writes it out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from fuyun.fabric.spec import FabricSpec

_PREFIX = {
    "nxos": "Ethernet1/",
    "comware": "Ten-GigabitEthernet1/0/",
    "ovs": "port",
}


def tor_port_name(platform: str, index: int) -> str:
    """The ``index``-th (1-based) host-facing interface of a ToR of ``platform``."""
    return f"{_PREFIX.get(platform, 'Ethernet1/')}{index}"


def derive(platform: str, count: int, taken: Iterable[str] = ()) -> Iterator[str]:
    """``count`` interface names in index order, skipping the ``taken`` ones."""
    used = set(taken)
    index = 0
    made = 0
    while made < count:
        index += 1
        name = tor_port_name(platform, index)
        if name not in used:
            used.add(name)
            made += 1
            yield name


def resolve(spec: FabricSpec) -> list[str | None]:
    """Every host's ToR interface, in ``spec.hosts`` order (None for an uncabled host)."""
    platform = {s.name: s.platform.value for s in spec.switches}
    out: list[str | None] = [h.tor_port for h in spec.hosts]
    taken: dict[str, set[str]] = defaultdict(set)
    missing: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(spec.hosts):
        if h.tor is None:
            continue
        if h.tor_port is not None:
            taken[h.tor].add(h.tor_port)
        else:
            missing[h.tor].append(i)
    for tor, indexes in missing.items():
        names = derive(platform.get(tor, "nxos"), len(indexes), taken[tor])
        for i, name in zip(indexes, names, strict=True):
            out[i] = name
    return out


def fill_tor_ports(spec: FabricSpec) -> FabricSpec:
    """``spec`` with every cabled host's ``tor_port`` set (derived where absent)."""
    if all(h.tor_port is not None or h.tor is None for h in spec.hosts):
        return spec
    hosts = [
        h if h.tor_port == name else h.model_copy(update={"tor_port": name})
        for h, name in zip(spec.hosts, resolve(spec), strict=True)
    ]
    return spec.model_copy(update={"hosts": hosts})
