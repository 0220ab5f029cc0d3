"""Rendered text equals the reviewed golden files, byte for byte, and is deterministic.

Regenerate with ``python -m tests.policy.goldens`` only after reading the diff.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from fuyun.policy.ir import DevicePolicy
from tests.policy.goldens import CASES, GOLDEN

IDS = [name for name, _, _ in CASES]


@pytest.mark.parametrize(("name", "renderer", "policy"), CASES, ids=IDS)
def test_output_equals_golden(
    name: str, renderer: Callable[[DevicePolicy], str], policy: Callable[[], DevicePolicy]
) -> None:
    expected = (GOLDEN / name).read_text()
    assert renderer(policy()) == expected, f"{name} differs; see tests/policy/goldens.py"


@pytest.mark.parametrize(("name", "renderer", "policy"), CASES, ids=IDS)
def test_input_order_does_not_change_output(
    name: str, renderer: Callable[[DevicePolicy], str], policy: Callable[[], DevicePolicy]
) -> None:
    """Ports, rules and sets in any order render the same text: desired state is stable."""
    p = policy()
    rng = random.Random(name)
    ports = []
    for port in p.ports:
        ingress, egress = list(port.ingress), list(port.egress)
        rng.shuffle(ingress)
        rng.shuffle(egress)
        ports.append(replace(port, ingress=tuple(ingress), egress=tuple(egress)))
    rng.shuffle(ports)
    sets = list(p.sets)
    rng.shuffle(sets)
    shuffled = replace(p, ports=tuple(ports), sets=tuple(sets), vlans=tuple(reversed(p.vlans)))
    assert renderer(shuffled) == renderer(p)
