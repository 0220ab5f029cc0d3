"""N+1 verdicts worked out by hand: which single failure leaves VMs homeless, and why."""

from __future__ import annotations

from typing import Any

from fuyun.planning import nplus1
from fuyun.planning.plan import Options, run
from fuyun.planning.simulate import Simulation
from tests.planning.conftest import fabric, scenario

NO_EXTRAS = Options(strategies=False, remedies=False, nplus1=False)


def _sim(spec: Any, **kw: Any) -> Simulation:
    return run(spec, scenario(steps=1, **kw), NO_EXTRAS)[0]


def _by(result: nplus1.NPlusOne) -> dict[tuple[str, str], nplus1.DomainCheck]:
    return {(d.kind, d.name): d for d in result.domains}


def test_half_full_switched_module_survives_any_host_or_tor() -> None:
    # Packing puts 3 VMs on t1-h1 and 3 on t1-h2; t2 has 6 free slots.
    sim = _sim(fabric(), initial_vms=(6, 6))
    verdict = _by(nplus1.check(sim))
    assert verdict[("host", "s1-m1-t1-h1")].kept_ip == 3
    tor = verdict[("tor", "s1-m1-t1")]
    assert (tor.vms, tor.kept_ip, tor.failed) == (6, 6, 0)
    site = verdict[("site", "s1")]  # the only site: nowhere to go
    assert (site.vms, site.failed) == (6, 6)
    assert site.reasons == {"no surviving site to go to": 6}


def test_a_tor_failure_strands_what_the_other_tor_cannot_hold() -> None:
    # 9 VMs: t1-h1 3, t1-h2 3, t2-h1 3; only t2-h2 (3 slots) is left.
    sim = _sim(fabric(), initial_vms=(9, 9))
    verdict = _by(nplus1.check(sim, kinds=("host", "tor")))
    assert verdict[("host", "s1-m1-t1-h1")].ok
    tor = verdict[("tor", "s1-m1-t1")]
    assert (tor.vms, tor.kept_ip, tor.failed) == (6, 3, 3)
    assert tor.reasons == {"VM density (1pXv)": 3}


def test_routed_clos_tor_failure_cannot_keep_addresses() -> None:
    sim = _sim(fabric(kind="routed-clos"), initial_vms=(3, 3))
    verdict = _by(nplus1.check(sim, kinds=("host", "tor")))
    host = verdict[("host", "s1-m1-t1-h1")]
    assert (host.kept_ip, host.failed) == (3, 0)  # its ToR-mate h2 carries the VLAN
    tor = verdict[("tor", "s1-m1-t1")]
    assert (tor.failed, tor.reasons) == (3, {"L2 reach (VLAN span)": 3})
    assert "routed-clos confines the VLAN to ToR s1-m1-t1" in tor.example


def test_anti_affinity_blocks_the_only_other_host() -> None:
    # A pair in one group on the only two hosts: losing either leaves no legal home.
    spec = fabric(tors=1, hosts=2)
    sim = _sim(spec, initial_vms=(2, 2), anti_affinity_share=1.0, group_size=2)
    verdict = _by(nplus1.check(sim, kinds=("host",)))
    assert verdict[("host", "s1-m1-t1-h1")].reasons == {"anti-affinity": 1}
    roomy = _sim(fabric(tors=1, hosts=3), initial_vms=(2, 2), anti_affinity_share=1.0)
    assert not nplus1.check(roomy, kinds=("host",)).failing


def test_site_loss_keeps_addresses_only_over_an_l2_extension() -> None:
    for link, kept, new in (("otv", 3, 0), ("none", 0, 3)):
        sim = _sim(fabric(sites=("s1", "s2"), link=link), initial_vms=(3, 3))
        site = _by(nplus1.check(sim, kinds=("site",)))[("site", "s1")]
        assert (site.vms, site.kept_ip, site.new_ip, site.failed) == (3, kept, new, 0), link


def test_a_check_leaves_the_end_state_as_it_found_it() -> None:
    sim = _sim(fabric(sites=("s1", "s2"), link="otv"), initial_vms=(9, 9))
    c = sim.w.cluster

    def state() -> tuple[Any, ...]:
        hosts = [(h.state, h.used_vcpus, h.used_ram_mb, h.vm_count) for h in c.hosts.values()]
        switches = [(s.used_mac, s.used_arp, s.used_vlans) for s in c.switches.values()]
        spans = [dict(seg.span) for n in sim.networks for seg in n.segments]
        return (hosts, switches, spans, dict(c.tor_best), dict(c.module_vms))

    before = state()
    nplus1.check(sim)
    assert state() == before
