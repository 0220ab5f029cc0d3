"""Which resource refused a request: read from the scheduler's own decision.

The decision counts, per filter, the hosts it removed, with a sample reason. The
filter that removed the most hosts names the resource, ties going to the filter
that runs first (switch-capacity reasons also name the switch and its table). A
routed-clos VLAN that holds the VM to a full ToR while other ToRs of its module
have room is named first: the limit is the VLAN's reach, not the module. When no
host was even looked at, every ToR was pruned because no host below it had the
vCPU left; the module's hosts then say whether the 1pXv limit or the cores ran out.
"""

from __future__ import annotations

import re
from dataclasses import replace
from itertools import islice

from fuyun.planning.world import World
from fuyun.scheduler.framework import Decision, Request, Scheduler

ROOM_PROBE = 64

_FILTERS = {
    "host-state": "hosts",
    "hypervisor": "hosts",
    "vm-density": "density",
    "vcpu": "vcpu",
    "ram": "ram",
    "disk": "disk",
    "nic-bandwidth": "nic",
    "network-reachability": "l2-reach",
    "affinity": "anti-affinity",
}
_SWITCH = re.compile(r"^switch (?P<name>\S+): (?P<table>mac|arp|VLAN) table")


def attribute(
    world: World, req: Request, decision: Decision, sched: Scheduler | None = None
) -> tuple[str, str]:
    """(resource key, the scheduler's reason in words) for a refused request.

    With ``sched``, "room elsewhere" for a confined VLAN means a host that passes
    every other filter (up to :data:`ROOM_PROBE` hosts are tried), not just free vCPU.
    """
    confined = _confined_elsewhere(world, req, sched)
    if confined is not None:
        return confined
    if decision.removed:
        order = {name: i for i, name in enumerate(_order())}
        # Hosts out of service are no resource running out, unless nothing else refused.
        counted = [n for n in decision.removed if n != "host-state"] or list(decision.removed)
        name = min(counted, key=lambda n: (-decision.removed[n], order.get(n, 99)))
        samples = decision.samples.get(name) or [("", "")]
        reason = samples[0][1]
        detail = decision.reasons()
        if name == "switch-capacity":
            m = _SWITCH.match(reason)
            if m is not None:
                sw = world.cluster.switches.get(world.switch_by_name.get(m["name"]))  # type: ignore[arg-type]
                role = "agg" if sw is not None and sw.role == "aggregation" else "tor"
                table = {"mac": "mac", "arp": "arp", "VLAN": "vlans"}[m["table"]]
                return f"{role}-{table}", detail
            return "tor-mac", detail
        return _FILTERS.get(name, name), detail
    return _pruned(world, req)


def _order() -> list[str]:
    return [
        "host-state",
        "hypervisor",
        "vm-density",
        "vcpu",
        "ram",
        "disk",
        "nic-bandwidth",
        "network-reachability",
        "switch-capacity",
        "affinity",
    ]


def _confined_elsewhere(
    world: World, req: Request, sched: Scheduler | None
) -> tuple[str, str] | None:
    """L2 reach, when a routed-clos VLAN holds the VM to a full ToR and others have room."""
    c = world.cluster
    for need in req.networks:
        span = {t for t, k in need.span_ports.items() if k > 0}
        if need.switched or not span:
            continue
        elsewhere = [
            t
            for t in c.tors_by_module.get(need.module, ())
            if t not in span and c.tor_best.get(t, 0) >= req.demand.vcpus
        ]
        if elsewhere and sched is not None:
            free = replace(req, networks=tuple(n for n in req.networks if n is not need))
            # Emptiest ToRs first: if any has room, one of the first hosts shows it.
            elsewhere.sort(key=lambda t: -c.tor_best.get(t, 0))
            probe = (h for t in elsewhere for h in c.hosts_by_tor[t])
            fits = [h for h in islice(probe, ROOM_PROBE) if not sched.first_rejection(free, h)]
            elsewhere = sorted({h.tor for h in fits})
        if elsewhere:
            names = ", ".join(sorted(c.switches[t].name for t in span if t in c.switches))
            return (
                "l2-reach",
                f"routed-clos confines the VLAN to ToR {names}, which has no room; "
                f"{len(elsewhere)} other ToRs of the module have",
            )
    return None


def _pruned(world: World, req: Request) -> tuple[str, str]:
    c = world.cluster
    modules = req.modules or frozenset(c.modules)
    dense = cores = down = 0
    for m in modules:
        for tor in c.tors_by_module.get(m, ()):
            for h in c.hosts_by_tor[tor]:
                if h.state != "active":
                    down += 1
                elif h.vm_count >= h.max_vms:
                    dense += 1
                else:
                    cores += 1
    names = ", ".join(sorted(c.modules[m].name for m in modules if m in c.modules))
    if down and not dense and not cores:
        return "hosts", f"no active host in {names}"
    if dense >= cores:
        return "density", f"{dense} hosts of {names} at their 1pXv limit, {cores} out of vCPU"
    return (
        "vcpu",
        f"no host of {names} has {req.demand.vcpus} vCPU free "
        f"({cores} out of vCPU, {dense} at their 1pXv limit)",
    )
