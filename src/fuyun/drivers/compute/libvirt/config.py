"""Settings of the ``libvirt`` compute driver, read from ``FUYUN_LIBVIRT_*``.

Each fuyun host maps to a libvirt connection. ``FUYUN_LIBVIRT_HOSTS`` is JSON,
host name (or ``*`` for the rest) to::

    {"uri": "qemu+tcp://10.0.0.5/system",   # how fuyun connects
     "peer_uri": "qemu+tcp://10.0.0.5/system",  # how another host's daemon does (migration)
     "migration_uri": "tcp://10.0.0.5",     # the hypervisor's data channel, if not implied
     "plug": "ovs:br-int"}                  # none | bridge:NAME | ovs:NAME, as for qemu

``{host}`` in a URI is replaced by the host's name, so one ``*`` entry can
describe a whole fleet.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from fuyun.domain.errors import InvalidInput


@dataclass(frozen=True)
class LibvirtHost:
    uri: str = "qemu:///system"
    peer_uri: str | None = None
    migration_uri: str | None = None
    plug: str = "none"


@dataclass(frozen=True)
class LibvirtConfig:
    hosts: dict[str, LibvirtHost] = field(default_factory=dict)
    # kvm where hardware virtualization works, qemu for TCG, test for test:///.
    domain_type: str = "kvm"
    emulator: str = "/usr/bin/qemu-system-x86_64"
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = "console=ttyS0 quiet panic=-1"

    def host(self, name: str) -> LibvirtHost:
        entry = self.hosts.get(name) or self.hosts.get("*") or LibvirtHost()
        return LibvirtHost(
            uri=entry.uri.replace("{host}", name),
            peer_uri=entry.peer_uri.replace("{host}", name) if entry.peer_uri else None,
            migration_uri=(
                entry.migration_uri.replace("{host}", name) if entry.migration_uri else None
            ),
            plug=entry.plug,
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LibvirtConfig:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        if env.get("FUYUN_LIBVIRT_HOSTS"):
            values["hosts"] = parse_hosts(env["FUYUN_LIBVIRT_HOSTS"])
        elif env.get("FUYUN_LIBVIRT_URI"):
            values["hosts"] = {"*": LibvirtHost(uri=env["FUYUN_LIBVIRT_URI"])}
        if env.get("FUYUN_LIBVIRT_DOMAIN_TYPE"):
            kind = env["FUYUN_LIBVIRT_DOMAIN_TYPE"]
            if kind not in ("kvm", "qemu", "test"):
                raise InvalidInput(
                    f"FUYUN_LIBVIRT_DOMAIN_TYPE must be kvm, qemu or test, not '{kind}'",
                    field="FUYUN_LIBVIRT_DOMAIN_TYPE",
                )
            values["domain_type"] = kind
        for key, name in (("KERNEL", "kernel"), ("INITRD", "initrd")):
            if env.get(f"FUYUN_LIBVIRT_{key}"):
                values[name] = Path(env[f"FUYUN_LIBVIRT_{key}"])
        if env.get("FUYUN_LIBVIRT_APPEND"):
            values["append"] = env["FUYUN_LIBVIRT_APPEND"]
        return cls(**values)  # type: ignore[arg-type]


def parse_hosts(text: str) -> dict[str, LibvirtHost]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"FUYUN_LIBVIRT_HOSTS is not JSON: {exc}", field="FUYUN_LIBVIRT_HOSTS"
        ) from None
    if not isinstance(raw, dict):
        raise InvalidInput("FUYUN_LIBVIRT_HOSTS must map host names", field="FUYUN_LIBVIRT_HOSTS")
    known = {"uri", "peer_uri", "migration_uri", "plug"}
    hosts = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) - known or "uri" not in entry:
            raise InvalidInput(
                f"FUYUN_LIBVIRT_HOSTS[{name!r}] needs 'uri' and takes only {sorted(known)}",
                field="FUYUN_LIBVIRT_HOSTS",
            )
        hosts[str(name)] = LibvirtHost(**entry)
    return hosts
