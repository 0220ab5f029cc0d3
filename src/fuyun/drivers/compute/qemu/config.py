"""Settings of the ``qemu`` compute driver, read from ``FUYUN_QEMU_*``.

A host in fuyun's inventory is, for this driver, a directory of instance state
plus (optionally) a network namespace the host's QEMU processes run in and a
switch their taps are plugged into. ``FUYUN_QEMU_HOSTS`` maps host names to
that placement as JSON; ``"*"`` is the default for hosts not named::

    {"*": {"plug": "none"},
     "h1": {"netns": "lab-h1", "plug": "bridge:br-h1"},
     "h2": {"netns": "lab-h2", "plug": "ovs:br-int", "ovsdb": "unix:/run/ovs/db.sock"}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from fuyun.domain.errors import InvalidInput

ACCELERATORS = ("auto", "kvm", "tcg")


@dataclass(frozen=True)
class HostConfig:
    """Where one host's QEMU processes live: their network namespace and their switch."""

    netns: str | None = None
    plug: str = "none"  # none | bridge:NAME | ovs:NAME
    # ovs: the OVSDB to talk to (``unix:/path/db.sock``); default: ovs-vsctl's own.
    ovsdb: str | None = None


@dataclass(frozen=True)
class QemuConfig:
    # Per-instance state (spec, pid, serial log) under STATE_DIR/HOST/VM_ID.
    state_dir: Path = Path("/var/lib/fuyun/qemu")
    # Unix sockets (QMP, migration) under a short path: sun_path holds 108 bytes.
    run_dir: Path = Path("/run/fuyun/qemu")
    binary: str = "qemu-system-x86_64"
    accel: str = "auto"
    machine: str = "pc"
    # What a VM boots: a kernel + initramfs; none means the firmware idles (no guest OS).
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = "console=ttyS0 quiet panic=-1"
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    # How long to wait for a QEMU process to answer on QMP, or to exit after ``quit``.
    timeout_s: float = 20.0
    # A live migration still running after this long is cancelled (the VM stays put).
    migration_timeout_s: float = 300.0

    def host(self, name: str) -> HostConfig:
        return self.hosts.get(name) or self.hosts.get("*") or HostConfig()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> QemuConfig:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for key, name in (("STATE_DIR", "state_dir"), ("RUN_DIR", "run_dir")):
            if f"FUYUN_QEMU_{key}" in env:
                values[name] = Path(env[f"FUYUN_QEMU_{key}"])
        for key, name in (("KERNEL", "kernel"), ("INITRD", "initrd")):
            if env.get(f"FUYUN_QEMU_{key}"):
                values[name] = Path(env[f"FUYUN_QEMU_{key}"])
        for key, name in (("BINARY", "binary"), ("MACHINE", "machine"), ("APPEND", "append")):
            if f"FUYUN_QEMU_{key}" in env:
                values[name] = env[f"FUYUN_QEMU_{key}"]
        if env.get("FUYUN_QEMU_MIGRATION_TIMEOUT_S"):
            try:
                values["migration_timeout_s"] = float(env["FUYUN_QEMU_MIGRATION_TIMEOUT_S"])
            except ValueError:
                raise InvalidInput(
                    "FUYUN_QEMU_MIGRATION_TIMEOUT_S must be a number of seconds",
                    field="FUYUN_QEMU_MIGRATION_TIMEOUT_S",
                ) from None
        accel = env.get("FUYUN_QEMU_ACCEL", "auto")
        if accel not in ACCELERATORS:
            raise InvalidInput(
                f"FUYUN_QEMU_ACCEL must be one of {', '.join(ACCELERATORS)}, not '{accel}'",
                field="FUYUN_QEMU_ACCEL",
            )
        values["accel"] = accel
        if env.get("FUYUN_QEMU_HOSTS"):
            values["hosts"] = parse_hosts(env["FUYUN_QEMU_HOSTS"])
        return cls(**values)  # type: ignore[arg-type]


def parse_hosts(text: str) -> dict[str, HostConfig]:
    """``FUYUN_QEMU_HOSTS`` as JSON: host name (or ``*``) → ``{"netns", "plug"}``."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"FUYUN_QEMU_HOSTS is not JSON: {exc}", field="FUYUN_QEMU_HOSTS"
        ) from None
    if not isinstance(raw, dict):
        raise InvalidInput("FUYUN_QEMU_HOSTS must map host names", field="FUYUN_QEMU_HOSTS")
    hosts = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) - {"netns", "plug", "ovsdb"}:
            raise InvalidInput(
                f"FUYUN_QEMU_HOSTS[{name!r}] takes only 'netns', 'plug' and 'ovsdb'",
                field="FUYUN_QEMU_HOSTS",
            )
        hosts[str(name)] = HostConfig(
            netns=entry.get("netns"), plug=entry.get("plug", "none"), ovsdb=entry.get("ovsdb")
        )
    return hosts
