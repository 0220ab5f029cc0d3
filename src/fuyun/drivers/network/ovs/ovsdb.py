"""The OVSDB side of a host switch, through ovsdbapp: bridges, ports, tags, QoS, sFlow.

Every object fuyun makes carries ``external_ids`` naming it (``fuyun-host`` on a
bridge, ``iface-id``/``attached-mac`` on a VM interface, ``fuyun-port`` on QoS and
queue rows), so reading back is a query, and nothing that is not ours is touched.
Reads return plain typed values; writes are one OVSDB transaction each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.schema.open_vswitch import impl_idl

from fuyun.domain.errors import DriverError

HOST_KEY = "fuyun-host"


@dataclass(frozen=True)
class OvsPort:
    """One port on a bridge as the switch holds it."""

    name: str
    tag: int | None
    trunks: tuple[int, ...]
    ofport: int
    iface_type: str
    iface_ids: dict[str, str]
    qos: dict[str, Any] | None  # {"max": .., "min": .., "ceil": ..} for fuyun QoS
    # The OpenFlow port number asked for (a port programmed before its interface exists).
    ofport_request: int | None = None


@dataclass(frozen=True)
class SflowConfig:
    targets: tuple[str, ...]
    sampling: int
    polling: int
    agent: str


class _NoWait(impl_idl.OvsVsctlTransaction):  # type: ignore[misc]
    """``ovs-vsctl --no-wait``: commit, without waiting for the switch to reconfigure."""

    def do_post_commit(self, txn: Any) -> None:
        return None


def _one(value: Any) -> Any:
    """An OVSDB optional column reads as a list of zero or one item."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


class Ovsdb:
    """A connection to one switch database (``unix:/path/db.sock``)."""

    def __init__(self, db: str, timeout_s: int = 10) -> None:
        self.db, self.timeout_s = db, timeout_s
        try:
            idl = connection.OvsdbIdl.from_server(db, "Open_vSwitch")
            # ovsdbapp keeps its connection on the *class*: a second instance would silently
            # reuse the first one's socket (another lab, a stopped connection). A class of
            # our own per instance gives each its own connection.
            api_class = type("FuyunOvsdbIdl", (impl_idl.OvsdbIdl,), {"_ovsdb_connection": None})
            self.api = api_class(connection.Connection(idl=idl, timeout=timeout_s))
        except Exception as exc:  # ovsdbapp raises bare exceptions on connect
            raise DriverError(f"cannot reach the switch database {db}: {exc}") from exc

    def close(self) -> None:
        self.api.ovsdb_connection.stop()

    @contextmanager
    def txn(self) -> Iterator[Any]:
        """One OVSDB transaction. Unlike ``ovs-vsctl`` it does not wait for
        ``ovs-vswitchd`` to reconfigure (a busy userspace switch can take seconds):
        callers that need the switch's answer (an OpenFlow port number) poll for it."""
        txn = _NoWait(self.api, self.api.ovsdb_connection, check_error=True)
        try:
            with txn:
                yield txn
        except DriverError:
            raise
        except Exception as exc:
            raise DriverError(f"switch database transaction failed: {exc}") from exc

    # -- bridges ---------------------------------------------------------------------

    def bridges(self) -> dict[str, dict[str, str]]:
        """Bridge name -> its external_ids."""
        rows = self.api.db_list_rows("Bridge").execute(check_error=True)
        return {r.name: dict(r.external_ids) for r in rows}

    def bridge_for_host(self, host: str) -> str | None:
        for name, ids in self.bridges().items():
            if ids.get(HOST_KEY) == host:
                return name
        return None

    def bridge_host(self, bridge: str) -> str | None:
        """The host a bridge serves, or None when the bridge is gone or serves none."""
        try:
            row = self.api.lookup("Bridge", bridge)
        except Exception:  # ovsdbapp raises RowNotFound
            return None
        return dict(row.external_ids).get(HOST_KEY)

    def add_bridge(self, name: str, external_ids: dict[str, str]) -> None:
        with self.txn() as txn:
            txn.add(self.api.add_br(name, may_exist=True, datapath_type="netdev"))
            txn.add(self.api.db_set("Bridge", name, ("external_ids", external_ids)))
            # fail_mode=secure: with no flows the bridge drops rather than floods.
            txn.add(self.api.db_set("Bridge", name, ("fail_mode", "secure")))

    def delete_bridge(self, name: str) -> None:
        with self.txn() as txn:
            txn.add(self.api.del_br(name, if_exists=True))

    def bridge_ids(self, bridge: str) -> dict[str, str]:
        return dict(self.api.db_get("Bridge", bridge, "external_ids").execute(check_error=True))

    def set_bridge_ids(self, bridge: str, ids: dict[str, str]) -> None:
        with self.txn() as txn:
            for key, value in ids.items():
                txn.add(self.api.br_set_external_id(bridge, key, value))

    # -- ports -----------------------------------------------------------------------

    def ports(self, bridge: str) -> dict[str, OvsPort]:
        """Every port of ``bridge`` by name, with its interface and QoS read back."""
        br = self.api.lookup("Bridge", bridge)
        out = {}
        for port in br.ports:
            iface = port.interfaces[0] if port.interfaces else None
            out[port.name] = OvsPort(
                name=port.name,
                tag=_one(port.tag),
                trunks=tuple(sorted(port.trunks)),
                ofport=int(_one(iface.ofport) or -1) if iface is not None else -1,
                iface_type=iface.type if iface is not None else "",
                iface_ids=dict(iface.external_ids) if iface is not None else {},
                qos=_qos_of(port),
                ofport_request=_one(iface.ofport_request) if iface is not None else None,
            )
        return out

    def add_port(
        self,
        bridge: str,
        name: str,
        *,
        tag: int | None = None,
        iface_ids: dict[str, str] | None = None,
        iface_type: str | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        with self.txn() as txn:
            txn.add(self.api.add_port(bridge, name, may_exist=True))
            if tag is not None:
                txn.add(self.api.db_set("Port", name, ("tag", tag)))
            if iface_type:
                txn.add(self.api.db_set("Interface", name, ("type", iface_type)))
            if options:
                txn.add(self.api.db_set("Interface", name, ("options", options)))
            if iface_ids:
                txn.add(self.api.db_set("Interface", name, ("external_ids", iface_ids)))

    def add_access_ports(
        self,
        bridge: str,
        ports: dict[str, tuple[int, dict[str, str]]],
        ofport_requests: dict[str, int] | None = None,
    ) -> None:
        """Add ``name -> (tag, interface external_ids)`` ports in one transaction, each
        with the OpenFlow port number ``ofport_requests`` asks for, if any."""
        if not ports:
            return
        requests = ofport_requests or {}
        with self.txn() as txn:
            for name, (tag, ids) in ports.items():
                txn.add(self.api.add_port(bridge, name, may_exist=True))
                txn.add(self.api.db_set("Port", name, ("tag", tag)))
                txn.add(self.api.db_set("Interface", name, ("external_ids", ids)))
                if name in requests:
                    txn.add(self.api.db_set("Interface", name, ("ofport_request", requests[name])))

    def request_ofport(self, name: str, ofport: int) -> None:
        with self.txn() as txn:
            txn.add(self.api.db_set("Interface", name, ("ofport_request", ofport)))

    def set_port(self, name: str, *, tag: int, iface_ids: dict[str, str]) -> None:
        with self.txn() as txn:
            txn.add(self.api.db_set("Port", name, ("tag", tag)))
            txn.add(self.api.db_clear("Port", name, "trunks"))
            txn.add(self.api.db_set("Interface", name, ("external_ids", iface_ids)))

    def delete_port(self, bridge: str, name: str) -> None:
        with self.txn() as txn:
            txn.add(self.api.del_port(name, bridge=bridge, if_exists=True))
        self.delete_qos_rows(name)

    # -- QoS -------------------------------------------------------------------------

    def set_port_qos(self, port: str, *, min_bps: int, max_bps: int, link_bps: int) -> None:
        """One ``linux-htb`` QoS with queue 0 (the default class) on ``port``."""
        self.delete_qos_rows(port, keep_reference=True)
        ids = {"fuyun-port": port}
        queue_cfg = {"max-rate": str(max_bps)}
        if min_bps:
            queue_cfg["min-rate"] = str(min_bps)
        with self.txn() as txn:
            queue = txn.add(self.api.db_create("Queue", other_config=queue_cfg, external_ids=ids))
            qos = txn.add(
                self.api.db_create(
                    "QoS",
                    type="linux-htb",
                    other_config={"max-rate": str(link_bps)},
                    queues={0: queue},
                    external_ids=ids,
                )
            )
            txn.add(self.api.db_set("Port", port, ("qos", qos)))

    def clear_port_qos(self, port: str) -> None:
        with self.txn() as txn:
            txn.add(self.api.db_clear("Port", port, "qos"))
        self.delete_qos_rows(port)

    def delete_qos_rows(self, port: str, keep_reference: bool = False) -> None:
        """QoS and Queue rows are roots in OVSDB: they outlive their port unless deleted."""
        with self.txn() as txn:
            if keep_reference:
                txn.add(self.api.db_clear("Port", port, "qos"))
            for table in ("QoS", "Queue"):
                for row in self.api.db_find_rows(
                    table, ("external_ids", "=", {"fuyun-port": port})
                ).execute(check_error=True):
                    txn.add(self.api.db_destroy(table, row.uuid))

    def stray_qos_rows(self) -> int:
        rows = self.api.db_list_rows("QoS").execute(check_error=True)
        return sum(1 for r in rows if "fuyun-port" in r.external_ids)

    # -- sFlow -----------------------------------------------------------------------

    def sflow(self, bridge: str) -> SflowConfig | None:
        br = self.api.lookup("Bridge", bridge)
        row = _one(br.sflow)
        if row is None:
            return None
        return SflowConfig(
            targets=tuple(sorted(row.targets)),
            sampling=int(_one(row.sampling) or 0),
            polling=int(_one(row.polling) or 0),
            agent=str(_one(row.agent) or ""),
        )

    def set_sflow(self, bridge: str, cfg: SflowConfig | None) -> None:
        with self.txn() as txn:
            if cfg is None:
                txn.add(self.api.db_clear("Bridge", bridge, "sflow"))
                return
            values: dict[str, Any] = {
                "targets": list(cfg.targets),
                "sampling": cfg.sampling,
                "polling": cfg.polling,
            }
            if cfg.agent:
                values["agent"] = cfg.agent
            row = txn.add(self.api.db_create("sFlow", **values))
            txn.add(self.api.db_set("Bridge", bridge, ("sflow", row)))


def _qos_of(port: Any) -> dict[str, Any] | None:
    qos = _one(port.qos)
    if qos is None:
        return None
    queue = qos.queues.get(0)
    cfg = dict(queue.other_config) if queue is not None else {}
    return {
        "type": qos.type,
        "link": int(qos.other_config.get("max-rate", 0)),
        "min": int(cfg.get("min-rate", 0)),
        "max": int(cfg.get("max-rate", 0)),
    }
