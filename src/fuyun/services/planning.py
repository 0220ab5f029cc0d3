"""``fuyun plan``: the live store (read-only) or a fabric file, through the planner.

The service resolves where the fabric comes from — the live store, exported with
its current load as a :class:`~fuyun.planning.world.Baseline`; a generator preset;
or a fabric YAML document — and hands everything to :mod:`fuyun.planning`, which
works on an in-memory copy. Reading the store is one read-only session; nothing
is written, so a plan needs no audit record and leaves every row as it was.

A plan run may also be stored (:func:`run_and_store`, through the audit log): the
console shows the latest stored run instead of planning again on every page load.

Plans are CPU-bound: the API runs them in a worker thread, and at most
:data:`CONCURRENT_PLANS` run at once so planning cannot starve the control plane.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fuyun.config import Settings
from fuyun.domain.errors import Conflict, InvalidInput
from fuyun.fabric.generator import PRESETS as FABRIC_PRESETS
from fuyun.fabric.generator import generate
from fuyun.fabric.loader import export_from_store
from fuyun.fabric.spec import FabricSpec
from fuyun.fabric.yamlio import load_fabric
from fuyun.planning import fabrics
from fuyun.planning.plan import Options, compare, plan
from fuyun.planning.scenario import Scenario, preset
from fuyun.planning.world import Baseline, ExistingNetwork, ExistingVm, VlanPoolParams
from fuyun.services import reports
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import (
    Host,
    Module,
    Network,
    Port,
    Prefix,
    Segment,
    ServerGroup,
    Site,
    SpanMember,
    Switch,
    VlanAllocation,
    VlanPool,
    Vm,
)

CONCURRENT_PLANS = 1
#: The largest demand a plan request may describe (the benchmark's million fits).
MAX_PLAN_VMS = 1_500_000
_gate = threading.BoundedSemaphore(CONCURRENT_PLANS)
LIVE = "live"


@dataclass(frozen=True)
class FabricSource:
    """Where a fabric comes from: ``live``, a preset name, or YAML text; and a change."""

    name: str = LIVE
    yaml: str | None = None
    seed: int = 0
    switched: list[str] | None = None  # routed modules rebuilt as switched-clos (TRILL)
    all_switched: bool = False
    add_site_like: str | None = None  # a second site built like this one ("*": the first)…
    add_site_link: str = "otv"  # …joined by this interconnect
    add_module_to: str | None = None  # "*": the first site


@dataclass(frozen=True)
class PlanRequest:
    fabric: FabricSource = field(default_factory=FabricSource)
    scenario: str = "steady"
    overrides: dict[str, Any] = field(default_factory=dict)
    remedies: bool = True
    strategies: bool = True
    nplus1: bool = True
    nplus1_limit: int = 200
    compare_with: FabricSource | None = None


def options(settings: Settings, req: PlanRequest) -> Options:
    reserved = tuple(int(v) for v in settings.vlan_reserved.split(",") if v.strip())
    return Options(
        cpu_ratio=settings.cpu_allocation_ratio,
        ram_ratio=settings.ram_allocation_ratio,
        vlan_pool=VlanPoolParams(settings.vlan_min, settings.vlan_max, reserved),
        strategies=req.strategies,
        remedies=req.remedies,
        nplus1=req.nplus1,
        nplus1_limit=req.nplus1_limit,
    )


def scenario_of(req: PlanRequest) -> Scenario:
    scenario = preset(req.scenario, **req.overrides)
    bound = scenario.upper_bound()
    # The ceiling is loose when growth compounds; count exactly only when it is close.
    if bound > 4 * MAX_PLAN_VMS or (bound > MAX_PLAN_VMS and scenario.total_vms() > MAX_PLAN_VMS):
        raise InvalidInput(
            f"the scenario asks for more than {MAX_PLAN_VMS:,} VMs", field="scenario"
        )
    return scenario


def run(
    db: Database | None, settings: Settings, principal: Principal, req: PlanRequest
) -> dict[str, Any]:
    """A plan (or, with ``compare_with``, a side-by-side what-if) as JSON-ready data.

    ``db`` may be None when neither fabric is ``live`` (the CLI on a file or preset).
    """
    principal.require_operator()
    scenario = scenario_of(req)
    opts = options(settings, req)
    spec, baseline = resolve(db, req.fabric)
    with _gate:
        if req.compare_with is not None:
            other, other_base = resolve(db, req.compare_with, field="compare_with")
            if other_base is None:
                other_base = baseline if req.compare_with.name == LIVE else None
            result = compare(spec, other, scenario, opts, baseline)
            result["fabrics"] = [describe(req.fabric), describe(req.compare_with)]
            return result
        out = plan(spec, scenario, opts, baseline).to_dict()
    out["scenario_params"] = scenario.to_dict()
    out["source"] = describe(req.fabric)
    return out


KIND = "plan"


def live_basis(s: Session) -> dict[str, Any]:
    """What a live plan starts from, in brief: hosts, switches and VMs with their last change."""
    hosts = s.scalar(select(func.count()).select_from(Host))
    switches = s.scalar(select(func.count()).select_from(Switch))
    vms, changed = s.execute(select(func.count(), func.max(Vm.updated_at))).one()
    return {
        "live": True,
        "hosts": int(hosts or 0),
        "switches": int(switches or 0),
        "vms": int(vms or 0),
        "vms_changed": None if changed is None else changed.isoformat(),
    }


def parameters_of(req: PlanRequest) -> dict[str, Any]:
    """The request as stored with a run (a fabric document is kept by its length only)."""
    out = asdict(req)
    for src in (out["fabric"], out["compare_with"]):
        if src is not None and src.get("yaml") is not None:
            src["yaml"] = f"<fabric YAML, {len(src['yaml'])} characters>"
    return out


def run_and_store(
    db: Database,
    settings: Settings,
    principal: Principal,
    req: PlanRequest,
    *,
    form: dict[str, str] | None = None,
) -> reports.Run:
    """Plan now and store the run; ``form`` keeps the console's inputs to show them again."""
    principal.require_operator()
    uses_live = LIVE in (req.fabric.name, req.compare_with and req.compare_with.name)
    if uses_live:
        with db.read_session() as s:
            basis = live_basis(s)  # read first: a change during the run makes it stale
    else:
        basis = {"live": False}
    started = time.perf_counter()
    result = run(db, settings, principal, req)
    seconds = time.perf_counter() - started
    if "a" in result:
        summary = {"compare": result["fabrics"], "delta": result["delta"]}
    else:
        keys = ("source", "scenario", "demanded", "placed", "unplaced", "first_unplaced_step")
        summary = {k: result.get(k) for k in keys}
    params = parameters_of(req)
    if form is not None:
        params["form"] = form
    return reports.save(
        db,
        principal,
        KIND,
        basis=basis,
        parameters=params,
        summary=summary,
        document=result,
        seconds=seconds,
    )


def latest(db: Database, principal: Principal) -> reports.Run | None:
    """The latest stored plan run; a live one is stale once hosts, switches or VMs changed."""

    def now(s: Session, stored: dict[str, Any]) -> dict[str, Any]:
        return live_basis(s) if stored.get("live") else stored

    return reports.latest(db, principal, KIND, now)


def describe(src: FabricSource) -> str:
    what = "fabric YAML" if src.yaml else src.name
    changes = []
    if src.all_switched or src.switched:
        changes.append("switched-clos (TRILL)")
    if src.add_module_to:
        changes.append(f"+ module in {src.add_module_to}")
    if src.add_site_like:
        changes.append(f"+ site like {src.add_site_like} over {src.add_site_link}")
    return what + (f" with {', '.join(changes)}" if changes else "")


def resolve(
    db: Database | None, src: FabricSource, *, field: str = "fabric"
) -> tuple[FabricSpec, Baseline | None]:
    """The fabric spec (with its changes) and, for the live store, its current load."""
    baseline: Baseline | None = None
    if src.yaml is not None:
        # Always text, never a path: a one-line string would otherwise be read as a file
        # name on the server.
        spec = load_fabric(src.yaml if "\n" in src.yaml else src.yaml + "\n")
    elif src.name == LIVE:
        if db is None:
            raise InvalidInput("the live store is planned through the API", field=field)
        with db.read_session() as s:
            try:
                spec = export_from_store(s, name="live")
            except ValidationError as exc:
                # The store may hold what a fabric file cannot say (a model under 1 GiB).
                problem = exc.errors()[0]
                where = ".".join(str(p) for p in problem.get("loc", ()))
                raise Conflict(
                    f"the live inventory cannot be planned: {where}: {problem.get('msg')}",
                    field=field,
                    code="fabric_unexportable",
                ) from None
            baseline = read_baseline(s)
        if not spec.hosts:
            raise InvalidInput("the live store holds no hosts; load a fabric first", field=field)
    elif src.name in FABRIC_PRESETS:
        spec = generate(src.name, src.seed)
    else:
        known = ", ".join([LIVE, *FABRIC_PRESETS])
        raise InvalidInput(f"unknown fabric '{src.name}' (known: {known})", field=field)
    if src.all_switched or src.switched:
        spec = fabrics.to_switched(spec, None if src.all_switched else src.switched)
    first = min((site.name for site in spec.sites), default="")
    if src.add_module_to:
        spec = fabrics.add_module(spec, first if src.add_module_to == "*" else src.add_module_to)
    if src.add_site_like:
        like = first if src.add_site_like == "*" else src.add_site_like
        spec = fabrics.add_site(spec, like, src.add_site_link)
    return spec, baseline


def read_baseline(s: Session) -> Baseline:
    """What the store already uses: host and switch load, VLANs, carved space, VMs."""
    base = Baseline()
    for name, *used in s.execute(
        select(
            Host.name,
            Host.used_vcpus,
            Host.used_ram_mb,
            Host.used_disk_gb,
            Host.used_bandwidth_mbps,
            Host.vm_count,
        )
    ):
        base.host_use[name] = tuple(used)  # type: ignore[assignment]
    for name, mac, arp, vlans in s.execute(
        select(Switch.name, Switch.used_mac, Switch.used_arp, Switch.used_vlans)
    ):
        base.switch_use[name] = (mac, arp, vlans)
    for module, vlan in s.execute(
        select(Module.name, VlanAllocation.vlan)
        .join(VlanPool, VlanPool.id == VlanAllocation.pool_id)
        .join(Module, Module.id == VlanPool.module_id)
    ):
        base.vlans_taken.setdefault(module, set()).add(vlan)
    carved: dict[str, list[Any]] = defaultdict(list)
    for site, cidr in s.execute(
        select(Site.name, Prefix.cidr)
        .join(Prefix, Prefix.site_id == Site.id)
        .where(Prefix.vrf_id.is_(None), Prefix.kind != "aggregate")
    ):
        carved[site].append(ipaddress.ip_network(cidr))
    for site, nets in carved.items():
        base.carved[site] = list(ipaddress.collapse_addresses(n for n in nets if n.version == 4))
    spans: dict[Any, dict[Any, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for net_id, seg_index, vlan, tor, ports, role in s.execute(
        select(
            Segment.network_id,
            Segment.index,
            Segment.vlan,
            Switch.name,
            SpanMember.ports,
            Switch.role,
        )
        .join(SpanMember, SpanMember.segment_id == Segment.id)
        .join(Switch, Switch.id == SpanMember.switch_id)
    ):
        if role == "tor":
            spans[net_id][(seg_index, vlan)][tor] = ports
    for net_id, module in s.execute(
        select(Network.id, Module.name).join(Module, Module.id == Network.module_id)
    ):
        segs = tuple((vlan, dict(p)) for (_, vlan), p in sorted(spans.get(net_id, {}).items()))
        base.networks.append(ExistingNetwork(str(net_id), module, segs))
    groups = {g.id: (g.policy, g.level) for g in s.scalars(select(ServerGroup))}
    first_port: dict[Any, tuple[str, int]] = {}
    for vm_id, net_id, seg_index in s.execute(
        select(Port.vm_id, Port.network_id, Segment.index)
        .join(Segment, Segment.id == Port.segment_id)
        .where(Port.vm_id.is_not(None))
        .order_by(Port.vm_id, Port.created_at)
    ):
        first_port.setdefault(vm_id, (str(net_id), seg_index))
    for vm_id, host, vcpus, ram, disk, bw, group_id in s.execute(
        select(Vm.id, Host.name, Vm.vcpus, Vm.ram_mb, Vm.disk_gb, Vm.bandwidth_mbps, Vm.group_id)
        .join(Host, Host.id == Vm.host_id)
        .where(Vm.state != "deleted")
    ):
        net, seg = first_port.get(vm_id, (None, 0))
        policy, level = groups.get(group_id, ("anti-affinity", "host"))
        base.vms.append(
            ExistingVm(
                host,
                vcpus,
                ram,
                disk,
                bw,
                net,
                seg,
                str(group_id) if group_id in groups else None,
                policy,
                level,
            )
        )
    return base


def presets() -> dict[str, Any]:
    """The scenario presets and the fabric sources a plan can start from."""
    from fuyun.planning.scenario import PRESETS

    return {
        "scenarios": {n: s.to_dict() for n, s in PRESETS.items()},
        "fabrics": [LIVE, *FABRIC_PRESETS],
    }
