"""ToR QoS text, read back: NX-OS style through ciscoconfparse2, Comware style by a small
parser that knows only what the renderer writes. Both must say the model's classes."""

from __future__ import annotations

import re

from fuyun.qos.compile import TorQos, VlanClass
from fuyun.qos.render import comware, nxos, render

MODEL = TorQos(
    "sz1-m01-t01",
    40_000_000_000,
    (
        VlanClass(100, "starfish", 300_000_000),
        VlanClass(101, "starfish", 1_500),  # rounds up to 2 kbps, never down
        VlanClass(230, "qzone", 1_000_000_000),
    ),
)
EXPECTED = {100: ("starfish", 300_000), 101: ("starfish", 2), 230: ("qzone", 1_000_000)}


def test_nxos_reads_back_as_the_model() -> None:
    from ciscoconfparse2 import CiscoConfParse

    conf = CiscoConfParse(nxos.render(MODEL).splitlines(), syntax="nxos")
    classes = {}
    for cmap in conf.find_objects(r"^class-map type qos match-any FUYUN-QOS-V\d+$"):
        name = cmap.text.split()[-1]
        kids = [c.text.strip() for c in cmap.children]
        [vlan] = [int(k.split()[-1]) for k in kids if k.startswith("match vlan")]
        [tenant] = [k.split()[-1] for k in kids if k.startswith("description tenant")]
        assert name == f"FUYUN-QOS-V{vlan}"
        classes[name] = (vlan, tenant)
    [policy] = conf.find_objects(r"^policy-map type qos FUYUN-QOS$")
    bandwidth = {}
    order = []
    for cls in policy.children:
        name = cls.text.split()[-1]
        order.append(name)
        kbps = [int(c.text.split()[-1]) for c in cls.children if "bandwidth" in c.text]
        if name != "class-default":
            bandwidth[name] = kbps[0]
    assert order[-1] == "class-default"
    parsed = {vlan: (tenant, bandwidth[name]) for name, (vlan, tenant) in classes.items()}
    assert parsed == EXPECTED
    [uplink] = conf.find_objects(r"^interface port-channel100$")
    assert [c.text.strip() for c in uplink.children] == ["service-policy type qos output FUYUN-QOS"]


def test_comware_reads_back_as_the_model() -> None:
    text = comware.render(MODEL)
    blocks = [b.strip().splitlines() for b in text.split("#\n") if b.strip()]
    classifiers, behaviours, pairs, applied = {}, {}, [], []
    for block in blocks:
        head, body = block[0], [line.strip() for line in block[1:]]
        if m := re.fullmatch(r"traffic classifier (\S+) operator and", head):
            vlan = int(next(b for b in body if b.startswith("if-match")).split()[-1])
            tenant = next(b for b in body if b.startswith("description")).split()[-1]
            classifiers[m[1]] = (vlan, tenant)
        elif m := re.fullmatch(r"traffic behavior (\S+)", head):
            [kbps] = [int(b.split()[-1]) for b in body if b.startswith("queue af bandwidth")]
            behaviours[m[1]] = kbps
        elif head == "qos policy FUYUN-QOS":
            pairs = [tuple(b.split()[1::2]) for b in body]
        elif head == "interface Bridge-Aggregation100":
            applied = body
    parsed = {classifiers[c][0]: (classifiers[c][1], behaviours[b]) for c, b in pairs}
    assert parsed == EXPECTED
    assert applied == ["qos apply policy FUYUN-QOS outbound"]


def test_platforms_without_a_renderer_get_no_text() -> None:
    assert render(MODEL, "ovs") == ""
    assert render(MODEL, "nxos") == nxos.render(MODEL)
    empty = TorQos("t", 1, ())
    assert "class class-default" in nxos.render(empty)
