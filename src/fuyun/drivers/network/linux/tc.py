"""Per-port and per-tenant bandwidth with ``tc`` HTB, driven through pyroute2.

A port's guarantee and ceiling hold in both directions, each on its own ifb with
the same tree::

    VM port clsact ingress (what the VM sends) ──mirred──> ifb fyqos0
    VM port clsact egress (what the VM receives) ─mirred──> ifb fyqos1
    fyqosN: htb 1: ── 1:1 host (rate = ceil = uplink)
                        ├── 1:1xx tenant (rate = tenant min, ceil = tenant max)
                        │     └── 1:2xxx port (rate = min, ceil = max, burst)
                        └── 1:2xxx port of no tenant aggregate

Frames are classified on each ifb by the port's MAC — the source MAC on the way
out of the VM, the destination MAC on the way in — with u32 keys at the MAC
header (see :mod:`.u32`). Class ids follow the sorted order of tenants and ports,
so the same document always builds the same tree and a dump compares byte for byte.

HTB needs a positive rate: "no guarantee" (0) becomes 8 kbit/s, "no ceiling"
the parent's ceiling. A document that only changes rates is applied with ``tc
class change`` (:func:`retune`); a new shape replaces the ifbs' root qdiscs
(:func:`build`), and the ports run unshaped for the milliseconds that takes. An
unchanged document is never touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyroute2 import IPRoute

from fuyun.domain.errors import DriverError
from fuyun.domain.qos import HostQos
from fuyun.drivers.network.linux import u32
from fuyun.drivers.network.linux.bridges import port_device
from fuyun.drivers.network.linux.place import Place

IFB = "fyqos0"  # carries the marker
# (ifb, clsact hook of the port, offset of the port's MAC before the network header)
DIRECTIONS = (("fyqos0", 0xFFFFFFF2, -8), ("fyqos1", 0xFFFFFFF3, -14))
_CLSACT = 0xFFFF0000
ROOT = 0x10000  # 1:
HOST_CLASS = 0x10001  # 1:1
FLOOR_BPS = 8000
ETH_P_ALL = 3
_FILTER_PRIO = 10
_MIN_BURST = 1600


def _h(minor: int) -> int:
    return 0x10000 | minor


@dataclass(frozen=True)
class ClassSpec:
    handle: int
    parent: int
    rate_bps: int
    ceil_bps: int
    burst: int


@dataclass(frozen=True)
class QosPlan:
    classes: tuple[ClassSpec, ...]
    filters: tuple[tuple[str, int], ...]  # (mac, class) on the ifb
    devices: tuple[str, ...]  # port interfaces redirected to the ifb


def plan(doc: HostQos) -> QosPlan:
    """The HTB tree for ``doc``; refuses what HTB cannot express before anything changes."""
    if doc.uplink_bps <= 0:
        raise DriverError(f"linux: host {doc.host} has uplink_bps {doc.uplink_bps}")
    uplink = doc.uplink_bps
    classes = [ClassSpec(HOST_CLASS, ROOT, uplink, uplink, _MIN_BURST)]
    parent_of: dict[str, tuple[int, int]] = {}
    for i, t in enumerate(sorted(doc.tenants, key=lambda t: t.tenant)):
        _check(t.tenant, t.min_bps, t.max_bps)
        handle = _h(0x100 + i)
        ceil = min(t.max_bps or uplink, uplink)
        classes.append(ClassSpec(handle, HOST_CLASS, max(t.min_bps, FLOOR_BPS), ceil, _MIN_BURST))
        for port_id in t.port_ids:
            parent_of[port_id] = (handle, ceil)
    if len(doc.tenants) > 0xFF or len(doc.ports) > 0xDFFF:
        raise DriverError(f"linux: host {doc.host} has more tenants or ports than HTB ids")
    filters, devices, seen = [], [], set()
    for j, p in enumerate(sorted(doc.ports, key=lambda p: p.port_id)):
        _check(p.port_id, p.min_bps, p.max_bps)
        if p.port_id in seen:
            raise DriverError(f"linux: port {p.port_id} appears twice in the QoS document")
        seen.add(p.port_id)
        parent, parent_ceil = parent_of.get(p.port_id, (HOST_CLASS, uplink))
        handle = _h(0x2000 + j)
        ceil = min(p.max_bps or parent_ceil, parent_ceil)
        rate = min(max(p.min_bps, FLOOR_BPS), ceil)
        burst = max(p.burst_bytes, _MIN_BURST)
        classes.append(ClassSpec(handle, parent, rate, ceil, burst))
        filters.append((p.mac.lower(), handle))
        devices.append(port_device(p.port_id))
    return QosPlan(tuple(classes), tuple(filters), tuple(sorted(devices)))


def _check(what: str, min_bps: int, max_bps: int) -> None:
    if min_bps < 0 or max_bps < 0:
        raise DriverError(f"linux: {what} has a negative rate")
    if max_bps and min_bps > max_bps:
        raise DriverError(f"linux: {what} guarantees {min_bps} above its ceiling {max_bps}")


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def missing(place: Place, want: QosPlan) -> list[str]:
    with place.ipr() as ipr:
        return [d for d in want.devices if _index(ipr, d) is None]


def retune(place: Place, want: QosPlan) -> bool:
    """Change rates in place when the trees already have ``want``'s shape.

    The common QoS change — a port's or tenant's rates — then touches only the classes
    concerned (no unshaped moment); anything else (ports or tenants added or removed,
    a redirect missing) returns False and the trees are rebuilt.
    """
    with place.ipr() as ipr:
        ifbs = []
        for name, hook, offset in DIRECTIONS:
            ifb = _index(ipr, name)
            if ifb is None:
                return False
            tree = _dump_tree(ipr, ifb)
            shape = sorted([h, p] for h, p, *_ in tree["classes"])  # type: ignore[attr-defined]
            # The kernel reports a class at the qdisc's top with parent TC_H_ROOT.
            top = {ROOT: 0xFFFFFFFF}
            if shape != sorted([c.handle, top.get(c.parent, c.parent)] for c in want.classes):
                return False
            wanted = sorted(
                [_FILTER_PRIO, handle, [list(k) for k in u32.mac_keys(mac, offset)]]
                for mac, handle in want.filters
            )
            live = sorted([p, c, [list(k) for k in keys]] for p, c, keys in tree["filters"])  # type: ignore[attr-defined]
            if live != wanted:
                return False
            ifbs.append((ifb, hook))
        redirects = sorted(([dev, ifb] for dev in want.devices for ifb, _hook in ifbs), key=str)
        if _redirects(ipr) != redirects:
            return False
        for ifb, _hook in ifbs:
            for c in want.classes:
                ipr.tc(
                    "change-class",
                    "htb",
                    index=ifb,
                    handle=c.handle,
                    parent=c.parent,
                    rate=f"{c.rate_bps}bit",
                    ceil=f"{c.ceil_bps}bit",
                    burst=c.burst,
                    cburst=c.burst,
                )
    return True


def build(place: Place, want: QosPlan) -> None:
    """Replace the whole tree: both ifbs' root qdiscs and every port's redirects."""
    with place.ipr() as ipr:
        ifbs = []
        for name, hook, offset in DIRECTIONS:
            ifb = _tree(ipr, name, want, offset)
            ifbs.append((ifb, hook))
        for _name, index in _fuyun_ports(ipr):
            if _has_clsact(ipr, index):
                ipr.tc("del", "clsact", index=index, handle=_CLSACT)
        for dev in want.devices:
            index = _index(ipr, dev)
            assert index is not None
            ipr.tc("add", "clsact", index=index, handle=_CLSACT)
            for ifb, hook in ifbs:
                ipr.tc(
                    "add-filter",
                    "u32",
                    index=index,
                    parent=hook,
                    prio=1,
                    protocol=ETH_P_ALL,
                    keys=["0x0/0x0+0"],
                    target=HOST_CLASS,
                    action=[
                        {
                            "kind": "mirred",
                            "direction": "egress",
                            "action": "redirect",
                            "ifindex": ifb,
                        }
                    ],
                )


def _tree(ipr: IPRoute, name: str, want: QosPlan, offset: int) -> int:
    """One direction's ifb with a fresh HTB tree; returns its index."""
    ifb = _index(ipr, name)
    if ifb is None:
        ipr.link("add", ifname=name, kind="ifb")
        ifb = _index(ipr, name)
    assert ifb is not None
    ipr.link("set", index=ifb, state="up")
    if any(
        q["parent"] == 0xFFFFFFFF and q.get_attr("TCA_KIND") == "htb"
        for q in ipr.get_qdiscs(index=ifb)
    ):
        ipr.tc("del", index=ifb, root=True)
    ipr.tc("add", "htb", index=ifb, handle=ROOT, default=0)
    for c in want.classes:
        ipr.tc(
            "add-class",
            "htb",
            index=ifb,
            handle=c.handle,
            parent=c.parent,
            rate=f"{c.rate_bps}bit",
            ceil=f"{c.ceil_bps}bit",
            burst=c.burst,
            cburst=c.burst,
        )
    for mac, handle in want.filters:
        ipr.tc(
            "add-filter",
            "u32",
            index=ifb,
            parent=ROOT,
            prio=_FILTER_PRIO,
            protocol=ETH_P_ALL,
            keys=u32.mac_keys(mac, offset),
            target=handle,
        )
    return ifb


def _fuyun_ports(ipr: IPRoute) -> list[tuple[str, int]]:
    out = []
    for link in ipr.get_links():
        name = link.get_attr("IFLA_IFNAME")
        if name.startswith("fy") and not name.startswith(("fybr", "fyqos")):
            out.append((name, link["index"]))
    return out


def _has_clsact(ipr: IPRoute, index: int) -> bool:
    return any(q.get_attr("TCA_KIND") == "clsact" for q in ipr.get_qdiscs(index=index))


def dump(place: Place) -> str:
    """Both trees and every redirect as the kernel reports them (for fingerprints, tests)."""
    with place.ipr() as ipr:
        state: dict[str, object] = {}
        for name, _hook, _offset in DIRECTIONS:
            ifb = _index(ipr, name)
            state[name] = None if ifb is None else _dump_tree(ipr, ifb)
        redirects = _redirects(ipr)
        state["redirects"] = redirects
    return json.dumps(state, sort_keys=True, default=str)


def _redirects(ipr: IPRoute) -> list[list[object]]:
    """[port, target ifindex] for every redirect on a fuyun port, sorted.

    Not per hook: u32 keeps one table store per qdisc, so a dump of either clsact hook
    lists both hooks' u32 tables (each hook still classifies with its own). A filter
    deleted from one hook takes its table with it, which the set below then lacks.
    """
    out: set[tuple[str, int | None]] = set()
    for name, index in _fuyun_ports(ipr):
        for _ifb, hook, _offset in DIRECTIONS:
            for f in ipr.get_filters(index=index, parent=hook):
                if f.get_nested("TCA_OPTIONS", "TCA_U32_ACT") is not None:
                    out.add((name, _mirred_target(f)))
    return sorted((list(r) for r in out), key=str)


def _dump_tree(ipr: IPRoute, ifb: int) -> dict[str, object]:
    classes, filters = [], []
    for c in ipr.get_classes(index=ifb):
        parms = c.get_nested("TCA_OPTIONS", "TCA_HTB_PARMS") or {}
        classes.append(
            [c["handle"], c["parent"], *(parms.get(k) for k in ("rate", "ceil", "buffer"))]
        )
    for f in ipr.get_filters(index=ifb, parent=ROOT):
        sel = f.get_nested("TCA_OPTIONS", "TCA_U32_SEL")
        if sel is not None:
            classid = f.get_nested("TCA_OPTIONS", "TCA_U32_CLASSID")
            filters.append([f["info"] >> 16, classid, u32.read_keys(sel)])
    return {
        "qdiscs": sorted(
            [q.get_attr("TCA_KIND"), q["handle"], q["parent"]] for q in ipr.get_qdiscs(index=ifb)
        ),
        "classes": sorted(classes, key=str),
        "filters": sorted(filters, key=str),
    }


def _mirred_target(f: object) -> int | None:
    acts = f.get_nested("TCA_OPTIONS", "TCA_U32_ACT")  # type: ignore[attr-defined]
    for prio in acts.get_attrs("TCA_ACT_PRIO_1") or [acts]:
        opts = prio.get_nested("TCA_ACT_OPTIONS", "TCA_MIRRED_PARMS") if prio else None
        if opts:
            return int(opts["ifindex"])
    return None


def read_marker(place: Place) -> str | None:
    with place.ipr() as ipr:
        ifb = _index(ipr, IFB)
        if ifb is None:
            return None
        return ipr.get_links(ifb)[0].get_attr("IFLA_IFALIAS")


def write_marker(place: Place, text: str) -> None:
    with place.ipr() as ipr:
        ifb = _index(ipr, IFB)
        if ifb is None:
            raise DriverError("linux: the QoS ifb vanished during the apply")
        ipr.link("set", index=ifb, IFLA_IFALIAS=text)
