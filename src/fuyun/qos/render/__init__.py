"""Switch QoS text for ToRs, one pure renderer per platform: ``TorQos -> str``.

Registered like the security renderers (``fuyun.policy.render``): the ToR's
``platform`` picks the function; a platform without one gets no text, and its
device state still carries the compiled classes.
"""

from __future__ import annotations

from collections.abc import Callable

from fuyun.qos.compile import TorQos
from fuyun.qos.render import comware, nxos

RENDERERS: dict[str, Callable[[TorQos], str]] = {
    "nxos": nxos.render,
    "comware": comware.render,
}


def render(qos: TorQos, platform: str) -> str:
    fn = RENDERERS.get(platform)
    return fn(qos) if fn is not None else ""
