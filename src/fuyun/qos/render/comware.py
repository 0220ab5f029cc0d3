"""Comware-style (H3C) QoS for a ToR: classifier + behaviour per tenant VLAN, one policy.

Format (``#`` separates blocks, sorted by VLAN):

- ``traffic classifier FUYUN-QOS-V<N> operator and`` with ``if-match service-vlan-id <N>``;
- ``traffic behavior FUYUN-QOS-V<N>`` with ``queue af bandwidth <kbit/s>`` (the
  guarantee as class-based queueing, rounded up to a kbit/s);
- ``qos policy FUYUN-QOS`` pairing ``classifier … behavior …``;
- ``interface Bridge-Aggregation100`` (the ToR's uplink bundle) with
  ``qos apply policy FUYUN-QOS outbound``.
"""

from __future__ import annotations

from fuyun.qos.compile import TorQos
from fuyun.qos.render._names import POLICY, UPLINK_BUNDLE, class_name, kbps


def render(qos: TorQos) -> str:
    out = [
        f"# fuyun qos for {qos.device} (Comware style)",
        f"# Uplink {kbps(qos.uplink_bps)} kbps, guaranteed {kbps(qos.guaranteed_bps)} kbps."
        " Apply as a whole. Do not edit.",
        "#",
    ]
    for c in qos.classes:
        name = class_name(c.vlan)
        out += [
            f"traffic classifier {name} operator and",
            f" description tenant {c.tenant}",
            f" if-match service-vlan-id {c.vlan}",
            "#",
            f"traffic behavior {name}",
            f" queue af bandwidth {kbps(c.guarantee_bps)}",
            "#",
        ]
    out.append(f"qos policy {POLICY}")
    out += [f" classifier {class_name(c.vlan)} behavior {class_name(c.vlan)}" for c in qos.classes]
    out += [
        "#",
        f"interface Bridge-Aggregation{UPLINK_BUNDLE}",
        f" qos apply policy {POLICY} outbound",
        "#",
        "",
    ]
    return "\n".join(out)
