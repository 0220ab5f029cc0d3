"""The shared reading of a Match, and the checks that keep bad IR from reaching a device."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuyun.domain.errors import InvalidInput
from fuyun.policy.ir import Action, AddressSet, Direction, Match, PortPolicy, Rule
from fuyun.policy.render import _common
from fuyun.policy.render._common import Atom, atoms, check, intersect, port_ranges_to_masks
from tests.policy.world import ENDPOINTS, host_policy

IN = Direction.INGRESS


def test_any_with_ports_is_tcp_or_udp_and_icmp_with_ports_is_nothing() -> None:
    assert [a.protocol for a in atoms(Match(IN, 4, "any", 53, 53))] == ["tcp", "udp"]
    assert atoms(Match(IN, 4, "icmp", 8, 8)) == ()
    assert atoms(Match(IN, 6, "any")) == (Atom(6, "any", None, None, None),)


def test_every_port_is_no_port_restriction() -> None:
    assert [(a.protocol, a.ports) for a in atoms(Match(IN, 4, "any", 0, 65535))] == [
        ("tcp", None),
        ("udp", None),
    ]


def test_a_zero_length_prefix_is_any_address() -> None:
    (atom,) = atoms(Match(IN, 4, "tcp", 22, 22, remote_cidr="0.0.0.0/0"))
    assert atom.remote_any


def test_intersect_protocols_and_ports() -> None:
    web = Atom(4, "tcp", (80, 443), None, None)
    assert intersect(Atom(4, "any", None, None, None), web) == ("tcp", (80, 443))
    assert intersect(web, Atom(4, "tcp", (400, 500), None, None)) == ("tcp", (400, 443))
    assert intersect(web, Atom(4, "tcp", (22, 22), None, None)) is None
    assert intersect(web, Atom(4, "udp", None, None, None)) is None
    assert intersect(web, Atom(6, "tcp", None, None, None)) is None


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_port_masks_cover_exactly_the_range(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    masks = port_ranges_to_masks(lo, hi)
    assert len(masks) <= 30
    covered = 0
    for value, mask in masks:
        size = (~mask & 0xFFFF) + 1
        assert value & mask == value and lo <= value and value + size - 1 <= hi
        covered += size
    assert covered == hi - lo + 1  # disjoint blocks inside the range, so none missing


def _with_rule(rule: Rule) -> object:
    p = host_policy()
    port = replace(p.ports[0], ingress=(*p.ports[0].ingress, rule))
    return replace(p, ports=(port, *p.ports[1:]))


@pytest.mark.parametrize(
    ("match", "field"),
    [
        (Match(IN, 4, "tcp", 90, 80), "port_min"),
        (Match(IN, 4, "tcp", 1, 70000), "port_min"),
        (Match(IN, 4, "sctp"), "protocol"),
        (Match(IN, 5), "family"),
        (Match(IN, 4, remote_set="sg_missing_v4"), "sets"),
        (Match(IN, 4, remote_cidr="2001:db8::/32"), "address"),
        (Match(IN, 4, remote_cidr="10.0.0.300/8"), "address"),
        (Match(IN, 4, remote_set="x", remote_cidr="10.0.0.0/8"), "remote"),
    ],
)
def test_bad_rules_are_invalid_input(match: Match, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check(_with_rule(Rule(Action.ALLOW, match, "sg:x")))  # type: ignore[arg-type]
    assert err.value.field == field


def test_set_of_the_wrong_family_is_invalid() -> None:
    p = host_policy()
    v6 = next(s for s in p.sets if s.family == 6)
    rule = Rule(Action.ALLOW, Match(IN, 4, remote_set=v6.name), "sg:x")
    port = replace(p.ports[0], ingress=(rule,))
    with pytest.raises(InvalidInput, match="another family"):
        check(replace(p, ports=(port,)))


def test_duplicate_macs_and_devices_are_invalid() -> None:
    p = host_policy()
    twin = replace(p.ports[1], endpoint=replace(p.ports[1].endpoint, mac=ENDPOINTS[0].mac))
    with pytest.raises(InvalidInput, match="MAC"):
        check(replace(p, ports=(p.ports[0], twin)))
    twin = replace(
        p.ports[1], endpoint=replace(p.ports[1].endpoint, device=p.ports[0].endpoint.device)
    )
    with pytest.raises(InvalidInput, match="appears twice"):
        check(replace(p, ports=(p.ports[0], twin)))


@pytest.mark.parametrize("device", ["eth 0", "a" * 16, "-x", 'x"y'])
def test_interface_names_must_be_linux_names(device: str) -> None:
    p = host_policy()
    port = replace(p.ports[0], endpoint=replace(p.ports[0].endpoint, device=device))
    with pytest.raises(InvalidInput, match="interface name"):
        check(replace(p, ports=(port,)))


def test_quotes_in_origins_or_names_cannot_break_out_of_the_text() -> None:
    p = host_policy()
    rule = Rule(Action.ALLOW, Match(IN, 4), 'sg:x" accept; #')
    with pytest.raises(InvalidInput, match="origin"):
        check(replace(p, ports=(PortPolicy(p.ports[0].endpoint, (rule,), ()),)))
    with pytest.raises(InvalidInput, match="set name"):
        check(replace(p, sets=(AddressSet("sg x; flush ruleset", 4, frozenset()),)))
    with pytest.raises(InvalidInput, match="device name"):
        check(replace(p, device="h1\nflush ruleset"))


def test_missing_device_name_falls_back_to_the_port_id() -> None:
    e = replace(ENDPOINTS[0], device="")
    assert _common.port_device(e) == "fy" + e.port_id.hex[:11]
    assert _common.port_device(replace(e, port_id=uuid.UUID(int=1))) == "fy00000000000"


def test_rules_differing_only_in_their_remote_side_render_everywhere() -> None:
    """None next to a value must never reach a comparison (regression: OVS sorting)."""
    from fuyun.policy.render import RENDERERS

    p = host_policy()
    web_set = next(s.name for s in p.sets if s.family == 4)
    remotes = [(None, None), (web_set, None), (None, "192.0.2.0/24")]

    def rules(d: Direction) -> tuple[Rule, ...]:
        return tuple(
            Rule(Action.ALLOW, Match(d, 4, "tcp", 80, 80, rs, rc), f"sg:{i}")
            for i, (rs, rc) in enumerate(remotes)
        )

    port = replace(p.ports[0], ingress=rules(IN), egress=rules(Direction.EGRESS))
    for (point, _), renderer in RENDERERS.items():
        assert renderer(replace(p, enforcement_point=point, ports=(port,)))
