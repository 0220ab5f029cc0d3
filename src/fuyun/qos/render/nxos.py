"""NX-OS-style QoS for a ToR: a class per tenant VLAN with its guaranteed bandwidth.

Format (every list sorted by VLAN):

- ``class-map type qos match-any FUYUN-QOS-V<N>`` with ``description tenant <name>``
  and ``match vlan <N>``;
- ``policy-map type qos FUYUN-QOS`` with, per class, ``bandwidth <kbit/s>`` (the
  guarantee, rounded up to a kbit/s), then ``class class-default``;
- ``interface port-channel100`` (the ToR's uplink bundle) with
  ``service-policy type qos output FUYUN-QOS``.
"""

from __future__ import annotations

from fuyun.qos.compile import TorQos
from fuyun.qos.render._names import POLICY, UPLINK_BUNDLE, class_name, kbps


def render(qos: TorQos) -> str:
    out = [
        f"!Command: fuyun qos for {qos.device} (NX-OS style)",
        f"!Uplink {kbps(qos.uplink_bps)} kbps, guaranteed {kbps(qos.guaranteed_bps)} kbps."
        " Apply as a whole. Do not edit.",
        "!",
    ]
    for c in qos.classes:
        out += [
            f"class-map type qos match-any {class_name(c.vlan)}",
            f"  description tenant {c.tenant}",
            f"  match vlan {c.vlan}",
        ]
    out += ["!", f"policy-map type qos {POLICY}"]
    for c in qos.classes:
        out += [f"  class {class_name(c.vlan)}", f"    bandwidth {kbps(c.guarantee_bps)}"]
    out += [
        "  class class-default",
        "!",
        f"interface port-channel{UPLINK_BUNDLE}",
        f"  service-policy type qos output {POLICY}",
        "",
    ]
    return "\n".join(out)
