"""Renderers: one enforcement IR, any enforcement point — by registering a function.

A renderer is a pure function ``DevicePolicy -> str``: no I/O, no clock, sorted
output, so the same policy always yields byte-identical text, golden tests are
meaningful, and a device whose desired text did not change is not touched. The
registry maps ``(enforcement_point, flavor)`` to a renderer; the fabric
inventory says which pair a module uses, and :func:`render` is all the core ever
calls. Moving enforcement from a host to the ToR changes the pair, never the
tools.

Registered pairs::

    ("vswitch", "linux-bridge")  nftables ``table inet fuyun``       (.nftables)
    ("vswitch", "ovs")           OpenFlow flows for ovs-ofctl        (.openflow)
    ("vm-iptables", "iptables")  iptables-/ip6tables-restore text    (.iptables)
    ("tor-acl", "nxos")          NX-OS-style VLANs, VRFs, VACLs      (.nxos)
    ("tor-acl", "comware")       Comware-style VLANs, VPNs, QoS ACLs (.comware)

Adding an enforcement point — e.g. ``vepa`` (802.1Qbg), where the hypervisor sends
every frame to the adjacent bridge and the bridge enforces per VSI — needs no
change here or in the compiler: the compiler already emits a DevicePolicy for
whatever ``enforcement_point`` the inventory names (its ports carry MAC, VLAN and
addresses, which is how a VEPA bridge identifies a VSI), and the new module calls
``register("vepa", "<switch flavor>", render)`` at import. Everything else —
dispatch, errors, golden and real-tool tests — follows the same pattern as the
renderers above.
"""

from __future__ import annotations

from collections.abc import Callable

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import DevicePolicy
from fuyun.policy.render import comware, iptables, nftables, nxos, openflow

Renderer = Callable[[DevicePolicy], str]

RENDERERS: dict[tuple[str, str], Renderer] = {
    ("vswitch", "linux-bridge"): nftables.render,
    ("vswitch", "ovs"): openflow.render,
    ("vm-iptables", "iptables"): iptables.render,
    ("tor-acl", "nxos"): nxos.render,
    ("tor-acl", "comware"): comware.render,
}


def register(enforcement_point: str, flavor: str, renderer: Renderer) -> None:
    """Add a renderer; a second one for the same pair is a programming error."""
    key = (enforcement_point, flavor)
    if key in RENDERERS and RENDERERS[key] is not renderer:
        raise ValueError(f"a renderer for {key} is already registered")
    RENDERERS[key] = renderer


def flavors(enforcement_point: str) -> list[str]:
    return sorted(f for ep, f in RENDERERS if ep == enforcement_point)


def render(policy: DevicePolicy, flavor: str) -> str:
    """Render ``policy`` for its enforcement point in ``flavor``.

    Raises InvalidInput (422) naming the known flavors when the pair is not
    registered, and whatever InvalidInput the renderer raises for policy it
    cannot express — never partial text.
    """
    renderer = RENDERERS.get((policy.enforcement_point, flavor))
    if renderer is None:
        known = ", ".join(flavors(policy.enforcement_point)) or "none"
        raise InvalidInput(
            f"no renderer for enforcement point {policy.enforcement_point!r} in flavor "
            f"{flavor!r} (known flavors: {known})",
            field="flavor",
        )
    return renderer(policy)
