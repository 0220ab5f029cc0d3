"""Live migration between two QEMU processes over QMP.

The contract Ganeti made explicit, in five steps: prepare the destination (the
same spec, ``-incoming unix:…``, taps plugged), set the downtime limit on the
source, ``migrate``, poll ``query-migrate`` until it completes or fails, then
finalize both sides — the destination announces itself (RARP/GARP, so switches
learn the MAC's new port at once) and the source process ends. The channel is a
unix socket, so it crosses the network namespaces hosts may run in. A failure at
any point kills the destination and leaves the source running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fuyun.domain.errors import DriverError
from fuyun.drivers.compute.base import InstanceSpec, MigrationStats
from fuyun.drivers.compute.qemu.monitor import session
from fuyun.drivers.compute.qemu.process import Instance

_DONE = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Sides:
    """What the driver lends a migration: how to boot, end and probe instances."""

    boot: Callable[[Instance, InstanceSpec, str | None], None]
    end: Callable[[Instance, InstanceSpec], None]
    # Take the instance's taps off its switch, or put them back.
    unplug: Callable[[Instance, InstanceSpec], None]
    plug: Callable[[Instance, InstanceSpec], None]
    alive: Callable[[Instance], bool]
    timeout_s: float
    migration_timeout_s: float


def _poll(source: Instance, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    with session(source.qmp_socket) as mon:
        while True:
            info = mon.cmd("query-migrate")
            if info.get("status") in _DONE:
                return info
            if time.monotonic() >= deadline:
                mon.cmd("migrate_cancel")
                raise DriverError(f"qemu: migration of {source.vm_id} took over {timeout_s} s")
            time.sleep(0.005)


def _finish_destination(dest: Instance, timeout_s: float) -> None:
    """Wait for the destination to run, then announce the guest's MACs on its new port."""
    deadline = time.monotonic() + timeout_s
    with session(dest.qmp_socket) as mon:
        while mon.cmd("query-status")["status"] != "running":
            if time.monotonic() >= deadline:
                raise DriverError(f"qemu: {dest.vm_id} did not resume on {dest.host}")
            time.sleep(0.005)
        mon.cmd("announce-self", initial=50, max=550, rounds=5, step=100)


def live_migrate(
    sides: Sides, spec: InstanceSpec, source: Instance, dest: Instance, max_downtime_ms: int
) -> MigrationStats:
    """Move a running instance; on failure the destination is gone and the source runs."""
    dest.write_spec(spec)
    (dest.dir / "incoming").touch()  # not an instance of dest until the switchover
    switched = False
    try:
        sides.boot(dest, spec, f"unix:{dest.migration_socket}")
        with session(source.qmp_socket) as mon:
            mon.cmd("migrate-set-parameters", **{"downtime-limit": max_downtime_ms})
            mon.cmd("migrate", uri=f"unix:{dest.migration_socket}")
        info = _poll(source, sides.migration_timeout_s)
        if info["status"] != "completed":
            raise DriverError(
                f"qemu: migration of {spec.vm_id} {info['status']}: "
                f"{info.get('error-desc', 'no reason given')}"
            )
        # The guest now runs on the destination; the source's ports still hold its MAC
        # in the switches. Unplug them at once: the switches flood, then learn the new
        # port from the announce (or the guest's first frame).
        switched = True
        sides.unplug(source, spec)
        _finish_destination(dest, sides.timeout_s)
    except BaseException:
        sides.end(dest, spec)
        dest.remove()
        _resume(source)
        if switched:
            sides.plug(source, spec)
        raise
    (dest.dir / "incoming").unlink(missing_ok=True)
    sides.end(source, spec)
    source.remove()
    return MigrationStats(
        total_ms=float(info.get("total-time", 0)),
        downtime_ms=float(info.get("downtime", 0)),
        transferred_bytes=int(info.get("ram", {}).get("transferred", 0)),
    )


def _resume(source: Instance) -> None:
    """A failed migration may leave the source paused: run it again."""
    try:
        with session(source.qmp_socket, timeout_s=2.0) as mon:
            if mon.cmd("query-status")["status"] in ("postmigrate", "paused", "finish-migrate"):
                mon.cmd("cont")
    except DriverError:
        pass  # the source itself is gone; status() will say so
