"""VM ports on Linux bridges: one bridge per network segment, each port on its segment's bridge.

Without 802.1Q (or where the operator does not want VLAN filtering) a plain
Linux bridge per segment is the separation: frames of one network can only be
forwarded to ports of the same bridge. A segment is identified on a host by its
VLAN on the host's ToR, so the bridge is named ``fybr<VLAN>``; a network with a
second segment (grown by ``new-vlan``) gets a second bridge, as on the wire.

The driver owns every ``fybr*`` bridge of its place: bridges no port needs are
deleted, ports no longer in the map are released from them, nothing else is
touched. A VM's interface is found by the name fuyun gives it
(:func:`fuyun.policy.ir.device_name`); a missing one refuses the whole apply
before anything changes (the VM is not running yet; the next pass retries). For
test VMs the driver can create the interface as a veth pair whose peer
(``fv…``, carrying the VM's MAC) a test moves into the VM's namespace.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from pyroute2 import IPRoute

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import HostPorts
from fuyun.drivers.network.linux.place import Place
from fuyun.policy.ir import device_name

BRIDGE_PREFIX = "fybr"


def bridge_name(vlan: int) -> str:
    return f"{BRIDGE_PREFIX}{vlan}"


def port_device(port_id: str) -> str:
    try:
        return device_name(uuid.UUID(port_id))
    except ValueError as exc:
        raise DriverError(f"linux: port id {port_id!r} is not a UUID") from exc


def peer_name(device: str) -> str:
    """The VM end of a veth the driver created for ``device`` (``fy…`` → ``fv…``)."""
    return "fv" + device[2:]


@dataclass(frozen=True)
class Plan:
    """Bridge name → its port interfaces, and port id → interface."""

    bridges: dict[str, tuple[str, ...]]
    devices: dict[str, str]


def plan(ports: HostPorts) -> Plan:
    bridges: dict[str, list[str]] = {}
    devices: dict[str, str] = {}
    for p in ports.ports:
        if not 0 <= p.vlan <= 4094:
            raise DriverError(f"linux: port {p.port_id} has VLAN {p.vlan} out of range")
        dev = port_device(p.port_id)
        if dev in devices.values():
            raise DriverError(f"linux: interface {dev} is named by two ports")
        devices[p.port_id] = dev
        bridges.setdefault(bridge_name(p.vlan), []).append(dev)
    return Plan({b: tuple(sorted(d)) for b, d in sorted(bridges.items())}, devices)


def _links(ipr: IPRoute) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for link in ipr.get_links():
        info = link.get_attr("IFLA_LINKINFO")
        out[link.get_attr("IFLA_IFNAME")] = {
            "index": link["index"],
            "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
            "master": link.get_attr("IFLA_MASTER"),
            "up": bool(link["flags"] & 1),
        }
    return out


def topology(place: Place) -> str:
    """The bridges the driver owns and their ports, as canonical text (for fingerprints)."""
    with place.ipr() as ipr:
        links = _links(ipr)
    by_index = {v["index"]: k for k, v in links.items()}
    state: dict[str, dict[str, object]] = {}
    for name, link in sorted(links.items()):
        if name.startswith(BRIDGE_PREFIX) and link["kind"] == "bridge":
            state.setdefault(name, {"up": link["up"], "ports": []})
            state[name]["up"] = link["up"]
    for name, link in sorted(links.items()):
        master = by_index.get(link["master"])  # type: ignore[call-overload]
        if master in state:
            state[master]["ports"].append([name, link["up"]])  # type: ignore[union-attr]
    return json.dumps(state, sort_keys=True)


def missing(place: Place, want: Plan) -> list[str]:
    with place.ipr() as ipr:
        links = _links(ipr)
    return sorted(d for d in want.devices.values() if d not in links)


def converge(place: Place, want: Plan, ports: HostPorts, create: bool) -> None:
    """Make the place's ``fybr*`` bridges and their ports exactly ``want``."""
    macs = {want.devices[p.port_id]: p.mac for p in ports.ports}
    with place.ipr() as ipr:
        links = _links(ipr)
        for dev in want.devices.values():
            if dev not in links and create:
                ipr.link("add", ifname=dev, kind="veth", peer={"ifname": peer_name(dev)})
                peer = ipr.link_lookup(ifname=peer_name(dev))[0]
                ipr.link("set", index=peer, address=macs[dev], state="up")
        links = _links(ipr)
        for bridge in want.bridges:
            if bridge not in links:
                ipr.link("add", ifname=bridge, kind="bridge")
        links = _links(ipr)
        owned = {
            name: link
            for name, link in links.items()
            if name.startswith(BRIDGE_PREFIX) and link["kind"] == "bridge"
        }
        index_of = {name: link["index"] for name, link in links.items()}
        for bridge, devs in want.bridges.items():
            if not owned[bridge]["up"]:
                ipr.link("set", index=index_of[bridge], state="up")
            for dev in devs:
                link = links[dev]
                if link["master"] != index_of[bridge]:
                    ipr.link("set", index=link["index"], master=index_of[bridge])
                if not link["up"]:
                    ipr.link("set", index=link["index"], state="up")
        wanted = {d for devs in want.bridges.values() for d in devs}
        owned_index = {link["index"]: name for name, link in owned.items()}
        for name, link in links.items():
            if link["master"] in owned_index and name not in wanted:
                ipr.link("set", index=link["index"], master=0)
        for name, link in owned.items():
            if name not in want.bridges:
                ipr.link("del", index=link["index"])
