"""The flow table of a host bridge, as pure functions of the host's documents.

Pipeline::

    0        port security (cookie PORTS): a VM port may send only with its own MAC;
             frames from anywhere else (uplink, bridge port) go on unchanged
    10..40   the vswitch policy (cookie POLICY): the OpenFlow renderer's tables 0..30,
             shifted by POLICY_BASE so the port-security table comes first

The renderer identifies ports by MAC; binding a MAC to the OpenFlow port it may
appear on is the driver's job, done here. Each cookie's flows are replaced as one
OpenFlow bundle (delete that cookie, add the new set), so another document's
flows are never touched and no packet sees half a table.
"""

from __future__ import annotations

import re

from fuyun.domain.errors import DriverError
from fuyun.domain.hostports import PortBinding

PORTS_COOKIE = "0x66750001"
POLICY_COOKIE = "0x6675796e"  # the renderer's own cookie
POLICY_BASE = 10

_TABLE = re.compile(r"(?<![a-z_])table=(\d+)")
_RESUBMIT = re.compile(r"resubmit\(,(\d+)\)")


def port_flows(bindings: list[tuple[PortBinding, int]]) -> list[str]:
    """Table 0: each (binding, ofport) may send only from its MAC; others pass to policy."""
    c = f"cookie={PORTS_COOKIE},table=0"
    out = [f"{c},priority=0,actions=resubmit(,{POLICY_BASE})"]
    for binding, ofport in sorted(bindings, key=lambda b: b[1]):
        mac = binding.mac.lower()
        out.append(
            f"{c},priority=100,in_port={ofport},dl_src={mac},actions=resubmit(,{POLICY_BASE})"
        )
        out.append(f"{c},priority=10,in_port={ofport},actions=drop")
    return out


def policy_flows(rendered: str) -> list[str]:
    """The renderer's flows moved to start at :data:`POLICY_BASE`.

    An empty document (a host whose module enforces elsewhere) switches normally.
    Anything but ``ovs-ofctl`` flow lines (e.g. an nftables ruleset meant for a
    Linux-bridge host) is refused rather than half-loaded.
    """
    out = []
    for line in rendered.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(f"cookie={POLICY_COOKIE},"):
            raise DriverError(f"the vswitch document is not an OpenFlow table: {line[:60]!r}")
        line = _TABLE.sub(lambda m: f"table={int(m.group(1)) + POLICY_BASE}", line)
        out.append(_RESUBMIT.sub(lambda m: f"resubmit(,{int(m.group(1)) + POLICY_BASE})", line))
    if not out and not any(
        line.startswith("# fuyun could not render") for line in rendered.splitlines()
    ):
        out.append(f"cookie={POLICY_COOKIE},table={POLICY_BASE},priority=0,actions=NORMAL")
    return out


def bundle(cookie: str, flows: list[str]) -> str:
    """An ``ovs-ofctl --bundle add-flows`` file replacing every flow of ``cookie``."""
    return "\n".join([f"delete cookie={cookie}/-1", *(f"add {f}" for f in flows)]) + "\n"
