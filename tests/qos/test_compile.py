"""The QoS compiler: host documents and ToR classes from ports and policies (pure)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from fuyun.domain.qos import HostQos
from fuyun.qos.admission import Link, left, tenant_need
from fuyun.qos.compile import host_qos, needs, tor_qos
from fuyun.qos.model import HostInput, PortRow, Rates

GOLD = Rates(300, 1000, 65536)


def _host(ports: list[PortRow], aggregates: dict[str, Rates] | None = None) -> HostInput:
    return HostInput("h1", "t1", 2000, tuple(ports), aggregates or {})


def _port(i: int, tenant: str, vlan: int, rates: Rates | None) -> PortRow:
    return PortRow(f"p{i}", f"fa:16:3e:00:00:{i:02x}", vlan, f"vm{i}", tenant, rates)


def test_tenant_need_is_the_port_sum_raised_to_the_aggregate() -> None:
    assert tenant_need([100, 200], 0, has_ports=True) == 300
    assert tenant_need([100, 200], 500, has_ports=True) == 500
    assert tenant_need([], 500, has_ports=False) == 0
    assert left(1000, 1200) == 0
    assert "200 left" in Link("host uplink", "h1", 1000, 800).refusal(300)


def test_host_document_shapes_ports_and_groups_tenants() -> None:
    doc = host_qos(
        _host(
            [
                _port(2, "b", 20, None),
                _port(1, "a", 10, GOLD),
                _port(3, "b", 20, Rates(50, 100)),
                _port(4, "c", 30, None),  # no QoS at all: not in the document
            ],
            {"b": Rates(400, 900)},
        )
    )
    assert doc.uplink_bps == 2_000_000_000
    assert [p.port_id for p in doc.ports] == ["p1", "p2", "p3"]
    assert (doc.ports[0].min_bps, doc.ports[0].max_bps, doc.ports[0].burst_bytes) == (
        300_000_000,
        1_000_000_000,
        65536,
    )
    assert (doc.ports[1].min_bps, doc.ports[1].max_bps) == (0, 0), "0 means none / line rate"
    assert [(t.tenant, t.min_bps, t.max_bps, t.port_ids) for t in doc.tenants] == [
        ("a", 300_000_000, 0, ("p1",)),
        ("b", 400_000_000, 900_000_000, ("p2", "p3")),
    ]
    assert HostQos.from_json(doc.to_json()) == doc


def test_the_same_intent_gives_the_same_bytes_in_any_order() -> None:
    ports = [_port(i, "a", 10 + i % 3, Rates(i, 10 * i + 1)) for i in range(1, 9)]
    assert host_qos(_host(ports)).to_json() == host_qos(_host(ports[::-1])).to_json()


@given(
    st.lists(
        st.tuples(
            st.sampled_from("abc"),
            st.integers(100, 103),
            st.one_of(st.none(), st.integers(0, 500)),
        ),
        max_size=12,
    ),
    st.dictionaries(st.sampled_from("abc"), st.integers(0, 800), max_size=3),
)
def test_tor_classes_add_up_to_what_the_hosts_admit(
    rows: list[tuple[str, int, int | None]], aggs: dict[str, int]
) -> None:
    aggregates = {t: Rates(g, 1000) for t, g in aggs.items()}
    ports = [
        _port(i, t, v, None if g is None else Rates(g, 1000)) for i, (t, v, g) in enumerate(rows)
    ]
    hosts = [_host(ports[::2], aggregates), _host(ports[1::2], aggregates)]
    tor = tor_qos("t1", 40_000, hosts)
    admitted = sum(sum(needs(h).values()) for h in hosts)
    assert tor.guaranteed_bps == admitted * 1_000_000
    assert all(c.guarantee_bps > 0 for c in tor.classes)
    assert [c.vlan for c in tor.classes] == sorted(c.vlan for c in tor.classes)


def test_the_linux_driver_plans_the_compiled_document() -> None:
    """The contract end to end, without root: tc's planner accepts what the compiler emits."""
    from fuyun.drivers.network.linux.tc import plan

    rows = [_port(1, "a", 10, GOLD), _port(2, "b", 20, None), _port(3, "b", 20, Rates(50, 100))]
    rows = [replace(r, port_id=str(uuid.UUID(int=i + 1))) for i, r in enumerate(rows)]
    doc = host_qos(_host(rows, {"b": Rates(400, 900)}))
    tree = plan(doc)
    rates = {c.rate_bps for c in tree.classes}
    assert {300_000_000, 400_000_000, 50_000_000} <= rates
    assert len(tree.filters) == 3
