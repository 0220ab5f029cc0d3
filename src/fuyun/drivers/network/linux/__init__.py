"""The ``linux`` network driver: Linux bridges, nftables and ``tc`` on hosts without Open vSwitch.

One driver instance converges one place (:class:`.place.Place`: a network
namespace, or the root namespace of a hypervisor) named ``host``, for the three
documents the control plane keeps per host:

``ports`` (:class:`fuyun.domain.hostports.HostPorts`)
    a bridge per network segment, each VM port on its bridge, anti-spoofing in
    ``table bridge fuyun_ports`` (:mod:`.bridges`, :mod:`.portsec`);
``vswitch`` (the rendered ``table inet fuyun`` ruleset)
    loaded with ``nft -f``, replacing only fuyun's table (:mod:`.nft`);
``qos`` (:class:`fuyun.domain.qos.HostQos`)
    an HTB tree on an ifb that every shaped port is redirected to (:mod:`.tc`).

Life cycle, as :class:`~fuyun.drivers.network.base.NetworkDriver` requires:
``apply`` first checks everything it can without changing the host (devices
present, the ruleset accepted by ``nft -c``, rates expressible) and raises
:class:`~fuyun.domain.errors.DriverError` with the previous state in force; an
apply whose generation and digest are already in force and undisturbed changes
nothing. ``observe`` returns the applied state only when the part still looks
exactly as it did after that apply — otherwise None, which the reconciler treats
as "apply again" (:meth:`drift` says why).
"""

from __future__ import annotations

import logging
import os

from fuyun.domain import hostports, qos
from fuyun.domain.errors import DriverError
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.linux import bridges, nft, portsec, tc
from fuyun.drivers.network.linux.marker import Marker, fingerprint
from fuyun.drivers.network.linux.place import Place

log = logging.getLogger("fuyun.drivers.linux")

VSWITCH_TABLE = "inet fuyun"
POINTS = ("ports", "vswitch", "qos")


class LinuxNetworkDriver:
    name = "linux"

    def __init__(self, host: str, netns: str | None = None, *, create_ports: bool = False):
        self.host = host
        self.place = Place(netns)
        self.tables = nft.Tables(self.place)
        self.create_ports = create_ports

    @classmethod
    def from_env(cls) -> LinuxNetworkDriver:
        """``FUYUN_HOST`` (default: the machine's name) in ``FUYUN_LINUX_NETNS`` (default: root)."""
        return cls(
            os.environ.get("FUYUN_HOST") or os.uname().nodename,
            os.environ.get("FUYUN_LINUX_NETNS") or None,
        )

    # -- the protocol -------------------------------------------------------------------

    def apply(self, state: AppliedState, rendered: str) -> None:
        self._own(state.device_type, state.device_name, state.enforcement_point)
        try:
            if self._may_be_in_force(state) and self._observe(state.enforcement_point) == (
                state.generation,
                state.digest,
            ):
                return
            if state.enforcement_point == "vswitch":
                self._apply_vswitch(state, rendered)
            elif state.enforcement_point == hostports.ENFORCEMENT_POINT:
                self._apply_ports(state, rendered)
            else:
                self._apply_qos(state, rendered)
        except OSError as exc:  # netlink refused a step the checks could not foresee
            raise DriverError(f"linux: {state.enforcement_point} on {self.host}: {exc}") from exc

    def observe(
        self, device_type: str, device_name: str, enforcement_point: str
    ) -> AppliedState | None:
        self._own(device_type, device_name, enforcement_point)
        try:
            found = self._observe(enforcement_point)
        except OSError as exc:
            raise DriverError(f"linux: reading {enforcement_point} on {self.host}: {exc}") from exc
        if found is None:
            return None
        return AppliedState(device_type, device_name, enforcement_point, *found)

    def _observe(self, point: str) -> tuple[int, str] | None:
        """(generation, digest) in force and undisturbed, or None."""
        if not self.place.exists():
            return None
        got = self._marker(point)
        if got is None:
            return None
        marker, live = got
        if marker.host != self.host or marker.live != live:
            return None
        return marker.generation, marker.digest

    # -- beyond the protocol ------------------------------------------------------------

    def drift(self, enforcement_point: str) -> str | None:
        """Why ``observe`` reports nothing for this part, or None when it is in force."""
        if not self.place.exists():
            return f"{enforcement_point}: {self.place} does not exist"
        got = self._marker(enforcement_point)
        if got is None:
            return f"{enforcement_point}: no fuyun state in {self.place}"
        marker, live = got
        if marker.host != self.host:
            return f"{enforcement_point}: applied for host {marker.host}, not {self.host}"
        if marker.live != live:
            return f"{enforcement_point}: changed since generation {marker.generation} was applied"
        return None

    # -- parts --------------------------------------------------------------------------

    def _own(self, device_type: str, device_name: str, enforcement_point: str) -> None:
        if device_type != "host" or device_name != self.host:
            raise DriverError(
                f"linux: this driver converges host {self.host}, not {device_type} {device_name}"
            )
        if enforcement_point not in POINTS:
            raise DriverError(
                f"linux: enforcement point {enforcement_point!r} is not one of {', '.join(POINTS)}"
            )

    def _may_be_in_force(self, state: AppliedState) -> bool:
        """A cheap look at the marker alone: a new digest needs no full read-back first."""
        point = state.enforcement_point
        if point == "qos" or not self.place.exists():
            return True  # the QoS marker is as cheap as it gets; observe decides
        if point == "vswitch":
            marker = self.tables.marker(VSWITCH_TABLE)
        else:
            marker = self.tables.marker(portsec.TABLE, bridges.topology(self.place))
        return marker is not None and (marker.generation, marker.digest) == (
            state.generation,
            state.digest,
        )

    def _marker(self, point: str) -> tuple[Marker, str] | None:
        if point == "vswitch":
            return self.tables.applied(VSWITCH_TABLE)
        if point == hostports.ENFORCEMENT_POINT:
            return self.tables.applied(portsec.TABLE, bridges.topology(self.place))
        marker = Marker.parse(tc.read_marker(self.place))
        return None if marker is None else (marker, fingerprint(tc.dump(self.place)))

    def _br_netfilter(self) -> None:
        """Bridged IP must pass the inet hooks, or ``table inet fuyun`` sees nothing."""
        for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
            self.place.sysctl(f"net.bridge.{key}", "1")

    def _apply_vswitch(self, state: AppliedState, rendered: str) -> None:
        if f"table {VSWITCH_TABLE} {{" not in rendered:
            raise DriverError(
                f"linux: the vswitch document of {self.host} is not an nftables "
                f"`table {VSWITCH_TABLE}` (is the host's vswitch flavor linux-bridge?)"
            )
        self._br_netfilter()
        self.tables.replace(VSWITCH_TABLE, rendered, self.host, state.generation, state.digest)

    def _apply_ports(self, state: AppliedState, rendered: str) -> None:
        try:
            doc = hostports.HostPorts.from_json(rendered)
        except (ValueError, KeyError, TypeError) as exc:
            raise DriverError(f"linux: the port map of {self.host} does not parse: {exc}") from exc
        want = bridges.plan(doc)
        script = portsec.render(doc, want.devices)
        absent = [] if self.create_ports else bridges.missing(self.place, want)
        if absent:
            raise DriverError(f"linux: port interfaces not present (yet): {', '.join(absent)}")
        nft.check(self.place, script)
        self._br_netfilter()
        bridges.converge(self.place, want, doc, self.create_ports)
        self.tables.replace(
            portsec.TABLE,
            script,
            self.host,
            state.generation,
            state.digest,
            bridges.topology(self.place),
        )

    def _apply_qos(self, state: AppliedState, rendered: str) -> None:
        try:
            doc = qos.HostQos.from_json(rendered)
        except (ValueError, KeyError, TypeError) as exc:
            raise DriverError(
                f"linux: the QoS document of {self.host} does not parse: {exc}"
            ) from exc
        want = tc.plan(doc)
        absent = tc.missing(self.place, want)
        if absent:
            raise DriverError(f"linux: shaped interfaces not present (yet): {', '.join(absent)}")
        if not tc.retune(self.place, want):
            tc.build(self.place, want)
        live = fingerprint(tc.dump(self.place))
        tc.write_marker(self.place, Marker(self.host, state.generation, state.digest, live).text())


__all__ = ["LinuxNetworkDriver"]
