"""The ``libvirt`` compute driver: the production path on KVM (and Xen) hosts.

Domains are persistent, named ``fuyun-<vm id>`` with the VM's id as their UUID,
and carry fuyun's spec in their metadata. Power off is ``destroy`` (a hard stop,
as the qemu driver's), reboot is a hard ``reset``; a resize redefines the domain
from the spec and restarts it if it ran. Live migration is peer-to-peer
``migrateToURI3`` with live, persist-destination and undefine-source, so the
domain exists in exactly one place when it returns. Every libvirt error becomes
a :class:`DriverError` naming the host and what was attempted.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import libvirt

from fuyun.domain.errors import DriverError
from fuyun.drivers.compute.base import InstanceSpec, InstanceStatus, MigrationStats, PowerState
from fuyun.drivers.compute.libvirt.config import LibvirtConfig
from fuyun.drivers.compute.libvirt.domxml import domain_xml, for_destination, spec_of

# libvirt prints every error on stderr unless a handler takes it; ours raise instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_RUNNING = {
    libvirt.VIR_DOMAIN_RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED,
}
_MIGRATE_FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PEER2PEER
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except libvirt.libvirtError as exc:
        raise DriverError(f"libvirt: {what}: {exc.get_error_message()}") from exc


class LibvirtComputeDriver:
    name = "libvirt"

    def __init__(self, config: LibvirtConfig | None = None) -> None:
        self.config = config or LibvirtConfig.from_env()
        self._conns: dict[str, libvirt.virConnect] = {}
        self._lock = threading.Lock()

    def _conn(self, host: str) -> libvirt.virConnect:
        uri = self.config.host(host).uri
        with self._lock:
            conn = self._conns.get(uri)
            if conn is not None and conn.isAlive():
                return conn
            with _errors(f"connect to {uri} for host {host}"):
                conn = libvirt.open(uri)
            self._conns[uri] = conn
            return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._conns.values():
                with _errors("close"):
                    conn.close()
            self._conns.clear()

    def _find(self, host: str, vm_id: uuid.UUID) -> Any | None:
        try:
            return self._conn(host).lookupByUUIDString(str(vm_id))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise DriverError(f"libvirt: look up {vm_id} on {host}: {exc}") from exc

    def _get(self, host: str, vm_id: uuid.UUID) -> Any:
        dom = self._find(host, vm_id)
        if dom is None:
            raise DriverError(f"libvirt: no domain {vm_id} on {host}")
        return dom

    def _spec(self, host: str, dom: Any) -> InstanceSpec:
        with _errors(f"read {dom.UUIDString()} on {host}"):
            spec = spec_of(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if spec is None:
            raise DriverError(f"libvirt: domain {dom.name()} on {host} was not defined by fuyun")
        return spec

    def _define(self, host: str, spec: InstanceSpec) -> Any:
        xml = domain_xml(self.config, replace(spec, host=host), self.config.host(host).plug)
        with _errors(f"define {spec.vm_id} on {host}"):
            return self._conn(host).defineXML(xml)

    # -- the contract -------------------------------------------------------------

    def create(self, spec: InstanceSpec) -> None:
        dom = self._find(spec.host, spec.vm_id) or self._define(spec.host, spec)
        with _errors(f"start {spec.vm_id} on {spec.host}"):
            if not dom.isActive():
                dom.create()

    def start(self, host: str, vm_id: uuid.UUID) -> None:
        dom = self._get(host, vm_id)
        with _errors(f"start {vm_id} on {host}"):
            if not dom.isActive():
                dom.create()

    def stop(self, host: str, vm_id: uuid.UUID) -> None:
        dom = self._get(host, vm_id)
        with _errors(f"stop {vm_id} on {host}"):
            if dom.isActive():
                dom.destroy()

    def reboot(self, host: str, vm_id: uuid.UUID) -> None:
        dom = self._get(host, vm_id)
        with _errors(f"reboot {vm_id} on {host}"):
            if not dom.isActive():
                dom.create()
                return
            try:
                dom.reset(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                    raise
                dom.reboot(0)  # drivers without reset (the test driver)

    def resize(self, host: str, vm_id: uuid.UUID, vcpus: int, ram_mb: int) -> None:
        dom = self._get(host, vm_id)
        spec = self._spec(host, dom)
        if (spec.vcpus, spec.ram_mb) == (vcpus, ram_mb):
            return
        with _errors(f"resize {vm_id} on {host}"):
            running = bool(dom.isActive())
            if running:
                dom.destroy()
            dom = self._define(host, replace(spec, vcpus=vcpus, ram_mb=ram_mb))
            if running:
                dom.create()

    def delete(self, host: str, vm_id: uuid.UUID) -> None:
        dom = self._find(host, vm_id)
        if dom is None:
            return
        with _errors(f"delete {vm_id} on {host}"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()

    def migrate(
        self,
        vm_id: uuid.UUID,
        source_host: str,
        dest_host: str,
        *,
        max_downtime_ms: int = 300,
    ) -> MigrationStats:
        dom = self._find(source_host, vm_id)
        if dom is None:
            if self._find(dest_host, vm_id) is not None:
                return MigrationStats(0.0, 0.0, 0)  # already moved: a replay
            raise DriverError(f"libvirt: no domain {vm_id} on {source_host}")
        if not dom.isActive():  # a stopped VM moves as its definition
            self._define(dest_host, self._spec(source_host, dom))
            with _errors(f"undefine {vm_id} on {source_host}"):
                dom.undefine()
            return MigrationStats(0.0, 0.0, 0)
        dest = self.config.host(dest_host)
        params: dict[str, Any] = {}
        if dest.migration_uri:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = dest.migration_uri
        what = f"migrate {vm_id} from {source_host} to {dest_host}"
        with _errors(what):
            migratable = dom.XMLDesc(
                libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE
            )
            params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = for_destination(
                migratable, self._spec(source_host, dom), dest_host
            )
            dom.migrateSetMaxDowntime(max_downtime_ms, 0)
            dom.migrateToURI3(dest.peer_uri or dest.uri, params, _MIGRATE_FLAGS)
        moved = self._get(dest_host, vm_id)
        with _errors(f"read the statistics of {what}"):
            stats = moved.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        return MigrationStats(
            total_ms=float(stats.get("time_elapsed", 0)),
            downtime_ms=float(stats.get("downtime", 0)),
            transferred_bytes=int(stats.get("memory_processed", stats.get("data_processed", 0))),
        )

    def status(self, host: str, vm_id: uuid.UUID) -> InstanceStatus | None:
        dom = self._find(host, vm_id)
        return None if dom is None else self._status(host, dom)

    def _status(self, host: str, dom: Any) -> InstanceStatus:
        with _errors(f"inspect {dom.UUIDString()} on {host}"):
            state, _max_kib, mem_kib, vcpus, _cpu = dom.info()
        power = PowerState.RUNNING if state in _RUNNING else PowerState.STOPPED
        return InstanceStatus(uuid.UUID(dom.UUIDString()), host, power, vcpus, mem_kib >> 10)

    def list_instances(self, host: str) -> list[InstanceStatus]:
        with _errors(f"list the domains of {host}"):
            domains = self._conn(host).listAllDomains()
        return [self._status(host, dom) for dom in domains]
