"""The scheduling cycle: candidates → filters → weighers → decision, with its explanation.

Like the Kubernetes scheduling framework, a filter answers with a reason (never
just "no"), weighers' scores are normalised to [0, 1] and multiplied by their
weights, and per-request data is computed once and shared. Like kube-scheduler's
``percentageOfNodesToScore``, a decision scores a bounded number of feasible hosts,
visited in the order the strategy prefers (ToRs already carrying the request's
VLANs first), so its cost does not grow with the size of the fleet.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from fuyun.scheduler.model import Cluster, Demand, GroupNeed, HostSlot, NetworkNeed

SAMPLES_PER_FILTER = 5


@dataclass(frozen=True)
class Request:
    demand: Demand
    networks: tuple[NetworkNeed, ...] = ()
    groups: tuple[GroupNeed, ...] = ()
    hypervisor: str | None = None
    pinned: uuid.UUID | None = None
    strategy: str = "pack"  # or "spread"
    # A move: hosts never to choose (the source) and, if given, the ToRs to choose among.
    avoid: frozenset[uuid.UUID] = frozenset()
    tors: frozenset[uuid.UUID] | None = None
    # VMs of the request still to place, this one included: a VLAN a routed CLOS is about
    # to confine to its first VM's ToR should start where the whole batch fits.
    batch: int = 1

    @property
    def modules(self) -> frozenset[uuid.UUID] | None:
        """The modules the request can reach; None when any will do."""
        if not self.networks:
            return None
        reach = [frozenset({n.module}) | n.extended for n in self.networks]
        return frozenset.intersection(*reach)


class Filter(Protocol):
    name: str

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        """None if ``host`` passes; otherwise the reason, in words an operator reads."""


class Weigher(Protocol):
    name: str
    weight: float

    def raw(self, cluster: Cluster, req: Request, host: HostSlot) -> float:
        """Higher is better; normalised across the candidates before weighting."""


@dataclass
class Decision:
    host: HostSlot | None
    considered: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    top: list[tuple[str, float]] = field(default_factory=list)
    # The feasible hosts scored, best first: the next VMs of a batch try them in order.
    ranked: list[HostSlot] = field(default_factory=list, repr=False)

    def reasons(self) -> str:
        """Each filter that removed hosts, how many, and one example in words."""
        parts = []
        for name, n in self.removed.most_common():
            example = self.samples.get(name, [])
            shown = f" (e.g. {example[0][0]}: {example[0][1]})" if example else ""
            parts.append(f"{name} removed {n} host{'s' if n != 1 else ''}{shown}")
        return "; ".join(parts) or "no candidate host"


def _opens_routed(req: Request) -> bool:
    """Whether this VM opens a routed-clos VLAN (no ToR yet) that will confine the rest."""
    return any(
        not n.switched and not any(k > 0 for k in n.span_ports.values()) for n in req.networks
    )


def _confined(req: Request) -> frozenset[object] | None:
    """The ToRs a routed-clos VLAN confines the request to; None when not confined.

    The reachability filter would reject every host below any other ToR, so the
    candidate walk skips them (an explanation still visits every host).
    """
    confined: frozenset[object] | None = None
    for need in req.networks:
        if need.switched:
            continue
        tors = frozenset(t for t, k in need.span_ports.items() if k > 0)
        if tors:
            confined = tors if confined is None else confined & tors
    return confined


class Scheduler:
    def __init__(
        self,
        cluster: Cluster,
        filters: Sequence[Filter],
        weighers: Sequence[Weigher],
        *,
        feasible_to_score: int = 64,
        subset_size: int = 1,
        rng: random.Random | None = None,
    ):
        self.cluster = cluster
        self.filters = list(filters)
        self.weighers = list(weighers)
        self.feasible_to_score = feasible_to_score
        # Pick at random among the best ``subset_size`` hosts: several schedulers working
        # from their own snapshots then spread their claims instead of all queueing on
        # the one best host's row. 1 (the default) always takes the best.
        self.subset_size = max(1, subset_size)
        self.rng = rng or random.Random()

    # -- candidates ---------------------------------------------------------------

    def _tors(self, req: Request, decision: Decision | None = None) -> Iterator[uuid.UUID]:
        c = self.cluster
        modules: Iterable[uuid.UUID]
        allowed = req.modules
        if allowed is None:
            # Emptiest modules first, whatever the strategy: balance across modules.
            modules = sorted(
                c.tors_by_module,
                key=lambda m: (c.module_vms[m], c.modules[m].name if m in c.modules else ""),
            )
        else:
            modules = sorted(allowed, key=lambda m: c.modules[m].name if m in c.modules else "")
        preferred = {t for n in req.networks for t, k in n.span_ports.items() if k > 0}
        confined = _confined(req)
        for module in modules:
            tors = [
                t
                for t in c.tors_by_module.get(module, ())
                if c.tor_best.get(t, 0) >= req.demand.vcpus and (req.tors is None or t in req.tors)
            ]
            if confined is not None:
                # The reachability filter would reject every host below these: count them
                # as its removals (with its reason) without walking them.
                beyond = [t for t in tors if t not in confined]
                if beyond and decision is not None:
                    self._unreachable(req, beyond, decision)
                tors = [t for t in tors if t in confined]
            reverse = req.strategy == "spread"
            tors.sort(
                key=lambda t: (t not in preferred, -c.tor_best[t] if reverse else c.tor_best[t])
            )
            yield from tors

    def _unreachable(self, req: Request, tors: list[uuid.UUID], decision: Decision) -> None:
        reach = next((f for f in self.filters if f.name == "network-reachability"), None)
        hosts = [self.cluster.hosts_by_tor[t][0] for t in tors if self.cluster.hosts_by_tor[t]]
        if reach is None or not hosts:
            return
        reason = reach.reject(self.cluster, req, hosts[0])
        if reason is None:
            return
        decision.removed[reach.name] += sum(len(self.cluster.hosts_by_tor[t]) for t in tors)
        samples = decision.samples.setdefault(reach.name, [])
        if len(samples) < SAMPLES_PER_FILTER:
            samples.append((hosts[0].name, reason))

    def candidates(self, req: Request, decision: Decision | None = None) -> Iterator[HostSlot]:
        if req.pinned is not None:
            host = self.cluster.hosts.get(req.pinned)
            if host is not None:
                yield host
            return
        for tor in self._tors(req, decision):
            for host in self.cluster.hosts_by_tor[tor]:
                if host.id not in req.avoid:
                    yield host

    def all_hosts(self, req: Request) -> Iterator[HostSlot]:
        """Every host, pruning nothing: the filters say why each one is out."""
        if req.pinned is not None:
            yield from self.candidates(req)
            return
        yield from self.cluster.hosts.values()

    # -- decisions ----------------------------------------------------------------

    def first_rejection(self, req: Request, host: HostSlot) -> tuple[str, str] | None:
        for f in self.filters:
            reason = f.reject(self.cluster, req, host)
            if reason is not None:
                return f.name, reason
        return None

    def next_of(self, req: Request, earlier: Decision) -> Decision | None:
        """The next VM of a batch on ``earlier``'s ranking: its first host that still passes.

        Every filter re-checks the host against the request as it now stands, so the
        answer is as safe as a full decision; only the order is the earlier one's (with
        ``pack`` the host just filled scores higher still). None when no ranked host
        passes any more: make a full decision.
        """
        decision = Decision(host=None, top=earlier.top, ranked=earlier.ranked)
        for host in earlier.ranked:
            decision.considered += 1
            rejected = self.first_rejection(req, host)
            if rejected is None:
                decision.host = host
                return decision
            decision.removed[rejected[0]] += 1
        return None

    def verdicts(self, req: Request, host: HostSlot) -> list[tuple[str, str | None]]:
        """Every filter's answer for one host: why (not) this host."""
        return [(f.name, f.reject(self.cluster, req, host)) for f in self.filters]

    def select(self, req: Request, *, explain: bool = False) -> Decision:
        """Pick a host for one VM; with ``explain``, look at every reachable host."""
        if explain:
            return self._walk(req, self.all_hosts(req), None)[1]
        return self.ranked(req)[1]

    def ranked(self, req: Request) -> tuple[list[HostSlot], Decision]:
        """The feasible hosts :meth:`select` scores, best first, and its decision.

        For batch placement: the next VMs of one request try these hosts in order,
        each re-checked by every filter, before another decision is made.
        """
        if req.batch > 1 and req.pinned is None and _opens_routed(req):
            # The rest of the batch must follow this VM's ToR (the VLAN is confined to it):
            # choose among the ToRs with the most room for it, not the fullest that takes one.
            roomy = self._roomiest_tors(req)
            if roomy:
                hosts, decision = self._walk(
                    replace(req, tors=roomy),
                    self.candidates(replace(req, tors=roomy)),
                    self.feasible_to_score,
                )
                if hosts:
                    return hosts, decision
        decision = Decision(host=None)
        return self._walk(req, self.candidates(req, decision), self.feasible_to_score, decision)

    def _roomiest_tors(self, req: Request) -> frozenset[uuid.UUID]:
        """The reachable ToRs below which all of ``req.batch`` fits, or else the most of it."""
        shortfall: dict[uuid.UUID, int] = {}
        for tor in self._tors(req):
            room = self.cluster.tor_room(tor, req.demand)
            if room > 0:
                shortfall[tor] = max(0, req.batch - room)
        if not shortfall:
            return frozenset()
        least = min(shortfall.values())
        return frozenset(t for t, k in shortfall.items() if k == least)

    def _walk(
        self,
        req: Request,
        source: Iterable[HostSlot],
        limit: int | None,
        decision: Decision | None = None,
    ) -> tuple[list[HostSlot], Decision]:
        decision = decision or Decision(host=None)
        prepared = [f for f in self.filters if hasattr(f, "prepare")]
        for f in prepared:
            f.prepare(self.cluster, req)  # type: ignore[attr-defined]
        try:
            feasible = self._feasible(req, source, limit, decision)
        finally:
            for f in prepared:
                f.prepare(self.cluster, None)  # type: ignore[attr-defined]
        if not feasible:
            return [], decision
        scored = self._score(req, feasible)
        pick = self.rng.randrange(min(self.subset_size, len(scored))) if self.subset_size > 1 else 0
        decision.host = scored[pick][0]
        decision.top = [(h.name, round(s, 4)) for h, s in scored[:5]]
        decision.ranked = [h for h, _ in scored]
        return decision.ranked, decision

    def _feasible(
        self, req: Request, source: Iterable[HostSlot], limit: int | None, decision: Decision
    ) -> list[HostSlot]:
        feasible: list[HostSlot] = []
        for host in source:
            decision.considered += 1
            rejected = self.first_rejection(req, host)
            if rejected is None:
                feasible.append(host)
                if limit is not None and len(feasible) >= limit:
                    break
                continue
            name, reason = rejected
            decision.removed[name] += 1
            samples = decision.samples.setdefault(name, [])
            if len(samples) < SAMPLES_PER_FILTER:
                samples.append((host.name, reason))
        return feasible

    def _score(self, req: Request, hosts: list[HostSlot]) -> list[tuple[HostSlot, float]]:
        totals = [0.0] * len(hosts)
        for w in self.weighers:
            raws = [w.raw(self.cluster, req, h) for h in hosts]
            lo, hi = min(raws), max(raws)
            if hi == lo:
                continue
            span = hi - lo
            for i, r in enumerate(raws):
                totals[i] += w.weight * (r - lo) / span
        order = sorted(range(len(hosts)), key=lambda i: (-totals[i], hosts[i].name))
        return [(hosts[i], totals[i]) for i in order]
