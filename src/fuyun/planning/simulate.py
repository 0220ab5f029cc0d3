"""Run a scenario through the real scheduler, IPAM math and layer-2 model, in memory.

Each step: apply a density change if the scenario has one, let new tenants open
their networks, then place every request VM by VM with
:class:`~fuyun.scheduler.framework.Scheduler` and the default filters and weighers
(the live pipeline), claiming host capacity, an address (growing the network by its
strategy) and the switch tables :func:`fuyun.ipam.l2.port_joins` says the port costs.

When a request is refused, the decision's reasons say which resource ran out
(:func:`fuyun.planning.attribution.attribute`). A refusal that only concerns one
network (its VLAN confined to a full ToR, a full ToR table, a subnet that may not
grow) makes the tenant open another network in the same module, as a partner
would; a module that cannot take the VM even on a fresh network is exhausted for
that flavor, and the tenant spills to the emptiest other module of its site, then
to other sites. The first refusal per module, site and fleet is the answer to
"what runs out first, where and when".

Batches are placed the way the pack strategy places them anyway: the host the
scheduler chose keeps taking VMs of the batch while every filter still passes it
(one filter pass, not a full decision, per VM). Spread runs a full decision per VM.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass

from fuyun.fabric.catalog import FLAVORS
from fuyun.ipam.addresses import parse_network
from fuyun.ipam.l2 import SegmentView, port_joins
from fuyun.planning.addressing import (
    Addressing,
    AddressPool,
    Exhausted,
    NetworkState,
    SegmentState,
    SubnetState,
    VlanPool,
)
from fuyun.planning.attribution import attribute
from fuyun.planning.report import NETWORK_SCOPED, Exhaustion, PlanResult
from fuyun.planning.scenario import Batch, Scenario
from fuyun.planning.stats import address_waste, module_rows, span_stats, step_stats, switch_loads
from fuyun.planning.world import World
from fuyun.scheduler.framework import Request, Scheduler
from fuyun.scheduler.model import Demand, GroupNeed, HostSlot, NetworkNeed
from fuyun.scheduler.plugins import default_filters, default_weighers
from fuyun.scheduler.plugins.affinity import unit_of

TENANT_POOL = "10.0.0.0/8"
MAX_NETWORKS_PER_TENANT = 256
QUEUE_TRIES = 8  # hosts of the last decision tried before deciding again
#: Refusals that hold for any new request of the flavor in the module until capacity
#: grows (a plan only adds load; a density change clears them).
MODULE_WIDE = frozenset(
    {"vcpu", "ram", "disk", "density", "hosts", "nic", "agg-mac", "agg-arp", "agg-vlans"}
)

#: What one placed VM is, per host: (network, segment, group, flavor) -> count.
VmKey = tuple[int, int, int, str]


@dataclass
class Group:
    index: int
    level: str
    need: GroupNeed
    size: int = 0


class Simulation:
    """One run of one scenario on one world; the world is changed in place."""

    def __init__(self, world: World, scenario: Scenario, *, batch: bool = True):
        self.w = world
        self.s = scenario
        # Batch placement (the last decision's ranked hosts, re-filtered) under pack;
        # False makes a full decision per VM, the baseline the benchmark compares with.
        self.batch = batch and scenario.strategy == "pack"
        c = world.cluster
        self.sched = Scheduler(c, default_filters(), default_weighers())
        self.demand = {
            f.name: Demand(f.vcpus, f.ram_mb, f.disk_gb, f.bandwidth_mbps) for f in FLAVORS
        }
        self.site_pools = {
            sid: AddressPool(site.name, site.aggregate, world.baseline.carved.get(site.name))
            for sid, site in world.sites.items()
            if site.aggregate is not None
        }
        pools = {
            m: VlanPool(world.vlan_pool, world.baseline.vlans_taken.get(info.name))
            for m, info in c.modules.items()
        }
        self.ipam = Addressing(pools)
        self.networks: list[NetworkState] = []
        self.tenant_nets: dict[int, list[int]] = {}
        self.tenant_site: dict[int, uuid.UUID] = {}
        self.tenant_pool: dict[int, AddressPool] = {}
        self.module_networks: Counter[uuid.UUID] = Counter()
        self.groups: list[Group] = []
        self.tenant_groups: dict[int, list[int]] = defaultdict(list)
        self.placements: dict[uuid.UUID, Counter[VmKey]] = defaultdict(Counter)
        # Spans of VLANs stretched to other modules while N+1 re-places a lost site.
        self.stretched: dict[tuple[int, int, uuid.UUID], dict[uuid.UUID, int]] = {}
        self.exhaustion: list[Exhaustion] = []
        self._seen: set[tuple[str, str, str]] = set()
        self._full: dict[tuple[uuid.UUID, str], tuple[str, str]] = {}
        self.placed = self.unplaced = self.spills = 0
        self.first_unplaced: int | None = None
        self.open_failure: tuple[str, str] | None = None
        self.step = 0
        self._existing()

    def _existing(self) -> None:
        """Register the live store's networks and VMs (their load is already in the slots)."""
        c, base = self.w.cluster, self.w.baseline
        modules = {info.name: m for m, info in c.modules.items()}
        tors = self.w.switch_by_name
        nets: dict[str, int] = {}
        for en in base.networks:
            module = modules.get(en.module)
            if module is None:
                continue
            info = c.modules[module]
            pool = self.site_pools.get(info.site) or AddressPool(
                "existing", parse_network(TENANT_POOL)
            )
            net = NetworkState(len(self.networks), -1, module, info.switched, "refuse", 32, pool)
            for vlan, ports in en.segments:
                span = {tors[t]: n for t, n in ports.items() if t in tors}
                net.segments.append(SegmentState(vlan, span))
            if not net.segments:
                continue
            net.refresh_need()
            nets[en.key] = net.index
            self.networks.append(net)
        groups: dict[str, Group] = {}
        hosts = {h.name: h for h in c.hosts.values()}
        for vm in base.vms:
            host = hosts.get(vm.host)
            if host is None:
                continue
            key = f"{vm.vcpus}c/{vm.ram_mb}m/{vm.disk_gb}g/{vm.bandwidth_mbps}b"
            self.demand.setdefault(key, Demand(vm.vcpus, vm.ram_mb, vm.disk_gb, vm.bandwidth_mbps))
            g = -1
            if vm.group is not None:
                if vm.group not in groups:
                    gi = len(self.groups)
                    need = GroupNeed(uuid.UUID(int=gi), vm.group_policy, vm.group_level, {})
                    groups[vm.group] = Group(gi, vm.group_level, need)
                    self.groups.append(groups[vm.group])
                group = groups[vm.group]
                unit = unit_of(host, group.level)
                group.need.members_at[unit] = group.need.members_at.get(unit, 0) + 1  # type: ignore[index]
                group.size += 1
                g = group.index
            n = nets.get(vm.network, -1) if vm.network else -1
            seg = vm.segment if n >= 0 and vm.segment < len(self.networks[n].segments) else 0
            self.placements[host.id][(n, seg, g, key)] += 1

    # -- the run ----------------------------------------------------------------------

    def run(self) -> PlanResult:
        started = time.perf_counter()
        demands = self.s.demands()
        timeline = []
        for step, batches in enumerate(demands):
            self.step = step
            self._density(step)
            for batch in batches:
                self._batch(batch)
            timeline.append(step_stats(self, step))
        return PlanResult(
            fabric=self.w.name,
            scenario=self.s.name,
            steps=self.s.steps,
            demanded=sum(b.count for bs in demands for b in bs),
            placed=self.placed,
            unplaced=self.unplaced,
            first_unplaced_step=self.first_unplaced,
            exhaustion=self.exhaustion,
            timeline=timeline,
            modules=module_rows(self),
            switches=switch_loads(self.w),
            addresses=address_waste(self),
            spans=span_stats(self),
            spills=self.spills,
            elapsed_s=round(time.perf_counter() - started, 3),
        )

    def _density(self, step: int) -> None:
        d = self.s.density
        if d is None or step not in (0, d.step):
            return
        limit = d.after if step == d.step else d.before
        c = self.w.cluster
        for h in c.hosts.values():
            h.max_vms = limit
        for hosts in c.hosts_by_tor.values():
            c.set_state(hosts[0].id, hosts[0].state)  # refreshes the ToR's pruning bound
        self._full.clear()

    # -- tenants and their networks -------------------------------------------------------

    def _site_for_new_tenant(self) -> uuid.UUID:
        """The site with the fewest VMs per host: operators steer new partners there."""
        c = self.w.cluster
        load: dict[uuid.UUID, list[int]] = {s: [0, 0] for s in self.w.sites}
        for m in c.modules.values():
            if m.site in load:
                load[m.site][0] += c.module_vms[m.id]
                load[m.site][1] += c.module_hosts[m.id]
        usable = [s for s in load if load[s][1] > 0]
        return min(usable, key=lambda s: (load[s][0] / load[s][1], self.w.sites[s].name))

    def _tenant(self, t: int) -> list[int]:
        nets = self.tenant_nets.get(t)
        if nets is not None:
            return nets
        site = self._site_for_new_tenant()
        self.tenant_site[t] = site
        if self.s.address_space == "tenant":
            self.tenant_pool[t] = AddressPool(f"tenant {t} VRF", parse_network(TENANT_POOL))
        nets = []
        for _ in range(self.s.networks_per_tenant):
            idx = self._open_network(t, self._modules_by_networks(site))
            if idx is not None:
                nets.append(idx)
        self.tenant_nets[t] = nets
        return nets

    def _modules_by_networks(self, site: uuid.UUID) -> list[uuid.UUID]:
        """Where a new network goes: the module with the fewest networks (as the service does)."""
        names = self.w.cluster.modules
        return sorted(
            self.w.modules_of(site), key=lambda m: (self.module_networks[m], names[m].name)
        )

    def _open_network(self, t: int, modules: list[uuid.UUID]) -> int | None:
        """A new network for tenant ``t`` in the first of ``modules`` that has room.

        When none can be opened, ``self.open_failure`` says why (a VLAN pool, IP space).
        """
        self.open_failure: tuple[str, str] | None = None
        if len(self.tenant_nets.get(t, ())) >= MAX_NETWORKS_PER_TENANT:
            self.open_failure = ("subnet", f"tenant {t} has {MAX_NETWORKS_PER_TENANT} networks")
            return None
        for module in modules:
            info = self.w.cluster.modules[module]
            pool = self.tenant_pool.get(t) or self.site_pools.get(info.site)
            if pool is None:
                continue
            net = NetworkState(
                len(self.networks), t, module, info.switched, self.s.growth, self.s.prefix_len, pool
            )
            try:
                self.ipam.open_network(net, info.name)
            except Exhausted as exc:
                scope = "site" if exc.resource == "ip-space" else "module"
                self._record(scope, module, exc.resource, exc.detail)
                self.open_failure = (exc.resource, exc.detail)
                continue
            self.networks.append(net)
            self.module_networks[module] += 1
            return net.index
        return None

    # -- placing ----------------------------------------------------------------------------

    def _group(self, t: int, members: int) -> Group:
        """The tenant's newest anti-affinity group, or a new one when it is full."""
        ids = self.tenant_groups[t]
        if ids and self.groups[ids[-1]].size < self.s.group_size:
            return self.groups[ids[-1]]
        g = len(self.groups)
        level = self.s.anti_affinity_level
        self.groups.append(Group(g, level, GroupNeed(uuid.UUID(int=g), "anti-affinity", level, {})))
        ids.append(g)
        return self.groups[g]

    def _batch(self, b: Batch) -> None:
        nets = self._tenant(b.tenant)
        slot = 0
        queues: dict[int, list[HostSlot]] = {}
        for i in range(b.count):
            if not nets:
                self._lost(b.count - i, "fleet", None, "ip-space", "the tenant has no network")
                return
            slot = (slot + 1) % len(nets) if len(nets) > 1 else 0
            group = self._group(b.tenant, 1) if b.grouped else None
            queue = queues.setdefault(nets[slot], []) if self.batch else None
            host = self._vm(b, nets, slot, group, queue)
            if host is None:
                # Nothing is freed during a plan: the rest of a refused request is refused
                # too (the API refuses a request whole; here the placed part stays).
                self._lost(b.count - i - 1, "fleet", None, "", "")
                return

    def _vm(
        self,
        b: Batch,
        nets: list[int],
        slot: int,
        group: Group | None,
        queue: list[HostSlot] | None,
    ) -> HostSlot | None:
        """Place one VM of ``b`` on the tenant's network in ``slot``, spilling as needed."""
        demand = self.demand[b.flavor]
        tried: set[uuid.UUID] = set()
        fresh = False
        while True:
            net = self.networks[nets[slot]]
            module = net.module
            outcome = self._try(net, demand, b.flavor, group, None if fresh else queue)
            if isinstance(outcome, HostSlot):
                return outcome
            resource, detail = outcome
            if resource in NETWORK_SCOPED and not fresh:
                # Only this network is stuck: the tenant opens another in the same module.
                self._record("network", module, resource, detail)
                idx = self._open_network(b.tenant, [module])
                if idx is not None:
                    nets[slot] = idx
                    self.spills += 1
                    fresh = True
                    continue
                # No second network here either: that is what ran out in the module.
                resource, detail = self.open_failure or (resource, detail)
            self._record("module", module, resource, detail)
            if resource in MODULE_WIDE and group is None:
                self._full[(module, b.flavor)] = (resource, detail)
            tried.add(module)
            idx = self._spill(b.tenant, b.flavor, group, tried, (resource, detail))
            if idx is None:
                self._lost(1, "fleet", None, resource, detail)
                return None
            nets[slot] = idx
            self.spills += 1
            fresh = True

    def _spill(
        self,
        t: int,
        flavor: str,
        group: Group | None,
        tried: set[uuid.UUID],
        why: tuple[str, str],
    ) -> int | None:
        """A new network in the emptiest module that can take the VM, home site first.

        Each candidate module is asked first (a decision for a port of a new, empty
        VLAN there), so no network is opened where the VM would be refused. When the
        home site has no module left, the site is exhausted, for the last reason.
        """
        c = self.w.cluster
        home = self.tenant_site[t]
        demand = self.demand[flavor]
        for site in sorted(self.w.sites, key=lambda s: (s != home, self.w.sites[s].name)):
            mods = [
                m
                for m in self.w.modules_of(site)
                if m not in tried and (m, flavor) not in self._full
            ]
            mods.sort(key=lambda m: (c.module_vms[m] / (c.module_hosts[m] or 1), c.modules[m].name))
            for m in mods:
                tried.add(m)
                info = c.modules[m]
                fresh = NetworkNeed(uuid.UUID(int=0), m, info.switched, {}, 1)
                groups = (group.need,) if group else ()
                probe = Request(demand, (fresh,), groups, strategy=self.s.strategy)
                ranked, decision = self.sched.ranked(probe)
                if not ranked:
                    why = attribute(self.w, probe, decision, self.sched)
                    self._record("module", m, *why)
                    if why[0] in MODULE_WIDE and group is None:  # a group's refusal is its own
                        self._full[(m, flavor)] = why
                    continue
                idx = self._open_network(t, [m])
                if idx is not None:
                    return idx
                why = self.open_failure or why
            if site == home:
                self._record("site", None, *why, site=site)
        return None

    def _try(
        self,
        net: NetworkState,
        demand: Demand,
        flavor: str,
        group: Group | None,
        queue: list[HostSlot] | None,
    ) -> HostSlot | tuple[str, str]:
        known = self._full.get((net.module, flavor))
        if known is not None and not any(net.segments[-1].span.values()):
            return known
        name = self.w.cluster.modules[net.module].name
        try:
            seg_index, sub = self.ipam.allocate(net, name)
        except Exhausted as exc:
            return exc.resource, exc.detail
        assert net.need is not None
        req = Request(
            demand,
            (net.need,),
            (group.need,) if group else (),
            strategy=self.s.strategy,
        )
        host = self._from_queue(req, queue) if queue is not None else None
        if host is None:
            ranked, decision = self.sched.ranked(req)
            if not ranked:
                sub.used -= 1
                return attribute(self.w, req, decision, self.sched)
            host = ranked[0]
            if queue is not None:
                queue[:] = ranked
        self._commit(host, net, seg_index, sub, demand, flavor, group)
        return host

    def _from_queue(self, req: Request, queue: list[HostSlot]) -> HostSlot | None:
        """The best-ranked host of the batch's last decision that every filter still passes.

        Hosts that fail on their own capacity leave the queue; a host refused only
        by the VM's anti-affinity group stays for the next group.
        """
        tries = 0
        i = 0
        while i < len(queue) and tries < QUEUE_TRIES:
            host = queue[i]
            tries += 1
            rejected = self.sched.first_rejection(req, host)
            if rejected is None:
                return host
            if rejected[0] == "affinity":
                i += 1
            else:
                del queue[i]
        return None

    def _commit(
        self,
        host: HostSlot,
        net: NetworkState,
        seg_index: int,
        sub: SubnetState,
        demand: Demand,
        flavor: str,
        group: Group | None,
    ) -> None:
        c = self.w.cluster
        c.claim(host.id, demand)
        seg = net.segments[seg_index]
        module = c.modules[net.module]
        view = SegmentView(seg.vlan, net.switched, module.aggregation, seg.span)
        for sw, d in port_joins(view, host.tor, 1).deltas.items():
            if sw in c.switches:
                c.add_switch_use(sw, d.mac, d.arp, d.vlans)
        seg.span[host.tor] = seg.span.get(host.tor, 0) + 1
        g = -1
        if group is not None:
            unit = unit_of(host, group.level)
            group.need.members_at[unit] = group.need.members_at.get(unit, 0) + 1  # type: ignore[index]
            group.size += 1
            g = group.index
        self.placements[host.id][(net.index, seg_index, g, flavor)] += 1
        self.placed += 1

    # -- bookkeeping ------------------------------------------------------------------------

    def _lost(
        self, n: int, scope: str, module: uuid.UUID | None, resource: str, detail: str
    ) -> None:
        if n <= 0:
            return
        self.unplaced += n
        if self.first_unplaced is None:
            self.first_unplaced = self.step
        if resource:
            self._record(scope, module, resource, detail)

    def _record(
        self,
        scope: str,
        module: uuid.UUID | None,
        resource: str,
        detail: str,
        *,
        site: uuid.UUID | None = None,
    ) -> None:
        """Keep the first refusal of each resource in each scope (and its site's)."""
        c = self.w.cluster
        if scope == "network":
            name = c.modules[module].name if module else ""
            self._add("network", name, resource, detail)
            return
        if scope == "module" and module is not None:
            self._add("module", c.modules[module].name, resource, detail)
            return
        if scope == "site":
            sid = site if site is not None else (c.modules[module].site if module else None)
            if sid is not None:
                self._add("site", self.w.sites[sid].name, resource, detail)
            return
        self._add("fleet", self.w.name, resource, detail)

    def _add(self, scope: str, name: str, resource: str, detail: str) -> None:
        key = (scope, name, resource)
        if key in self._seen:
            return
        self._seen.add(key)
        self.exhaustion.append(Exhaustion(scope, name, resource, self.step, detail))
