"""Batch moves: evacuate a host, drain a ToR, rebalance a module — with limits and progress.

A batch lists its VMs up front (in a ``migration_batches`` row), then moves them
through the ``vm.migrate`` workflow with a few workers. Limits bound how many
moves touch one host, one ToR and one site at a time (source and target both
count), so a drain never floods one switch; members of one server group move one
at a time, so anti-affinity is judged against where the others already are. Each
VM is planned just before it moves (the fabric changes as the batch runs); a VM
that cannot move keeping its addresses is reported with the plan's reasons and
the batch goes on. Progress (moved, failed, waiting, per VM) is saved after
every move, for the API, the CLI's progress bar and the console.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update

from fuyun.domain.enums import AuditResult, HostState
from fuyun.domain.errors import FuyunError, InvalidInput, NotFound
from fuyun.domain.vm_states import VmState
from fuyun.services.audit import record
from fuyun.services.inventory import resolve_ref
from fuyun.services.migration import service
from fuyun.services.migration.plan import MigrationPlan, Target
from fuyun.services.principal import Principal
from fuyun.store.models import Host, MigrationBatch, Module, Switch, Vm
from fuyun.store.types import utcnow

log = logging.getLogger("fuyun.migration")

KINDS = ("evacuate-host", "drain-tor", "rebalance-module")
RETRIES = 2  # a move that lost its target to a concurrent one is planned again


@dataclass(frozen=True)
class Limits:
    per_host: int = 2
    per_tor: int = 4
    per_site: int = 16
    workers: int = 4

    def check(self) -> None:
        for name in ("per_host", "per_tor", "per_site", "workers"):
            value = getattr(self, name)
            if not 1 <= value <= 64:
                raise InvalidInput(f"{name} must be between 1 and 64", field=name)


@dataclass
class Item:
    vm_id: str
    vm: str
    source: str
    group: str | None
    state: str = "waiting"  # waiting | moving | moved | failed | skipped
    target: str | None = None
    scope: str | None = None
    workflow_id: str | None = None
    error: str | None = None
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "attempts"}


# -- starting ------------------------------------------------------------------------


def start(
    rt: Any,
    principal: Principal,
    kind: str,
    target: str,
    *,
    limits: Limits | None = None,
    background: bool = True,
) -> uuid.UUID:
    """Record the batch (the VMs it covers) and run it, in a thread or here."""
    principal.require_operator()
    limits = limits or Limits()
    limits.check()
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    with rt.db.read_session() as s:
        hosts, scope_module = _hosts_of(s, kind, target)
        vms = list(
            s.scalars(
                select(Vm)
                .where(
                    Vm.host_id.in_([h.id for h in hosts]),
                    Vm.state.in_((VmState.ACTIVE.value, VmState.STOPPED.value)),
                )
                .order_by(Vm.name)
            )
        )
        names = {h.id: h.name for h in hosts}
        if kind == "rebalance-module":
            vms = _overloaded(s, hosts, vms)
        items = [
            Item(str(v.id), v.name, names[v.host_id], str(v.group_id) if v.group_id else None)  # type: ignore[index]
            for v in vms
        ]
    if kind in ("evacuate-host", "drain-tor"):
        _maintenance(rt, principal, hosts)
    with rt.db.write_session() as s:
        row = MigrationBatch(
            kind=kind,
            target=target,
            state="running",
            actor=principal.username,
            total=len(items),
            items=[i.as_dict() for i in items],
            limits=limits.__dict__,
        )
        s.add(row)
        s.flush()
        batch_id = row.id
    record(
        rt.db,
        principal,
        f"migration.{kind}",
        "migration-batch",
        tenant_id=None,
        object_id=str(batch_id),
        result=AuditResult.SUCCESS,
        detail={"target": target, "vms": len(items), "module": scope_module},
    )
    if background:
        threading.Thread(
            target=run, args=(rt, principal, batch_id), name=f"fuyun-batch-{batch_id}", daemon=True
        ).start()
    else:
        run(rt, principal, batch_id)
    return batch_id


def _hosts_of(s: Any, kind: str, target: str) -> tuple[list[Host], str | None]:
    if kind == "evacuate-host":
        host = s.get(Host, resolve_ref(s, Host, target, "host"))
        return [host], None
    if kind == "drain-tor":
        tor = resolve_ref(s, Switch, target, "tor")
        return list(s.scalars(select(Host).where(Host.tor_id == tor).order_by(Host.name))), None
    module = s.get(Module, resolve_ref(s, Module, target, "module"))
    hosts = list(s.scalars(select(Host).where(Host.module_id == module.id).order_by(Host.name)))
    return hosts, module.name


def _overloaded(s: Any, hosts: list[Host], vms: list[Vm]) -> list[Vm]:
    """Rebalance: VMs above the module's mean per active host, from the fullest first."""
    active = [h for h in hosts if h.state == HostState.ACTIVE.value]
    if not active:
        return []
    mean = sum(h.vm_count for h in active) / len(active)
    by_host: dict[uuid.UUID, list[Vm]] = {}
    for vm in vms:
        by_host.setdefault(vm.host_id, []).append(vm)  # type: ignore[arg-type]
    out: list[Vm] = []
    for h in sorted(active, key=lambda h: -h.vm_count):
        extra = int(h.vm_count - mean)
        if extra >= 1:
            out += by_host.get(h.id, [])[:extra]
    return out


def _maintenance(rt: Any, principal: Principal, hosts: list[Host]) -> None:
    """Hosts being emptied take no new VM, from this batch or anyone else."""
    from fuyun.services import inventory

    for host in hosts:
        if host.state == HostState.ACTIVE.value:
            inventory.set_host_state(rt.db, principal, host.id, HostState.MAINTENANCE)
            rt.placement.host_state_changed(host.id, HostState.MAINTENANCE.value)


# -- running -------------------------------------------------------------------------


def _target_for(kind: str, module: str | None) -> Target:
    if kind == "rebalance-module":
        return Target(module=module, strategy="spread")
    return Target()


def run(rt: Any, principal: Principal, batch_id: uuid.UUID) -> None:
    """Move every waiting VM of the batch within its limits; save progress as it goes."""
    with rt.db.read_session() as s:
        row = s.get(MigrationBatch, batch_id)
        assert row is not None
        kind, target, limits = row.kind, row.target, Limits(**row.limits)
        items = [Item(**{**i, "attempts": 0}) for i in row.items]
    module = target if kind == "rebalance-module" else None
    lock = threading.Lock()
    busy: Counter[tuple[str, str]] = Counter()
    groups: set[str] = set()
    inflight: dict[Future[service.MoveResult], tuple[Item, list[tuple[str, str]]]] = {}
    waiting = [i for i in items if i.state == "waiting"]
    try:
        with ThreadPoolExecutor(max_workers=limits.workers) as pool:
            while waiting or inflight:
                for item in list(waiting):
                    if len(inflight) >= limits.workers:
                        break
                    if item.group is not None and item.group in groups:
                        continue
                    # Hosts at their limit are not chosen as targets: the scheduler
                    # would pick the same packed host for every VM of a drain.
                    full = frozenset(
                        uuid.UUID(k[1])
                        for k, n in busy.items()
                        if k[0] == "host" and n >= limits.per_host
                    )
                    target = replace(_target_for(kind, module), avoid=full)
                    plan = _plan(rt, principal, item, target)
                    if (plan is None or not plan.feasible) and full:
                        unlimited = _plan(rt, principal, item, _target_for(kind, module))
                        if unlimited is not None and unlimited.feasible:
                            item.state, item.error = "waiting", None
                            break  # its only targets are busy: wait for a move to end
                    if plan is None or not plan.feasible:
                        waiting.remove(item)
                        _save(rt, batch_id, items, lock)
                        continue
                    keys = _keys(rt, plan)
                    if any(busy[k] >= _limit(limits, k[0]) for k in keys):
                        break  # a ToR or site at its limit: wait for a move to end
                    for k in keys:
                        busy[k] += 1
                    if item.group is not None:
                        groups.add(item.group)
                    item.state, item.target, item.scope = "moving", plan.target_host, plan.scope
                    waiting.remove(item)
                    future = pool.submit(
                        service.migrate,
                        rt,
                        principal,
                        uuid.UUID(item.vm_id),
                        Target(host=plan.target_host),
                        raise_error=False,
                    )
                    inflight[future] = (item, keys)
                    _save(rt, batch_id, items, lock)
                if not inflight:
                    if waiting:  # everything left waits on a limit no move will free
                        for item in waiting:
                            item.state, item.error = "failed", "no target within the limits"
                        waiting.clear()
                    break
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for future in done:
                    item, keys = inflight.pop(future)
                    for k in keys:
                        busy[k] -= 1
                    if item.group is not None:
                        groups.discard(item.group)
                    _finish(item, future, waiting)
                _save(rt, batch_id, items, lock)
    except Exception:
        log.exception("batch %s stopped", batch_id)
        for item in items:
            if item.state in ("waiting", "moving"):
                item.state, item.error = "failed", "the batch stopped on an internal error"
    _save(rt, batch_id, items, lock, final=True)


def _plan(rt: Any, principal: Principal, item: Item, target: Target) -> MigrationPlan | None:
    """The VM's plan now; a refusal is written on the item (cleared if it waits instead)."""
    try:
        plan = service.plan(rt, principal, uuid.UUID(item.vm_id), target)
    except FuyunError as exc:
        item.state, item.error = "failed", exc.message
        return None
    if not plan.feasible:
        item.state, item.error = "failed", "; ".join(plan.reasons)
    return plan


def _keys(rt: Any, plan: MigrationPlan) -> list[tuple[str, str]]:
    with rt.db.read_session() as s:
        rows = {
            h.name: h
            for h in s.scalars(
                select(Host).where(Host.name.in_([plan.source_host, plan.target_host]))
            )
        }
    keys = []
    for name in (plan.source_host, plan.target_host):
        h = rows[name]  # type: ignore[index]
        keys += [("host", str(h.id)), ("tor", str(h.tor_id)), ("site", str(h.site_id))]
    return sorted(set(keys))


def _limit(limits: Limits, kind: str) -> int:
    return {"host": limits.per_host, "tor": limits.per_tor, "site": limits.per_site}[kind]


def _finish(item: Item, future: Future[service.MoveResult], waiting: list[Item]) -> None:
    item.attempts += 1
    try:
        result = future.result()
    except FuyunError as exc:
        item.state, item.error = "failed", exc.message
        return
    item.workflow_id = str(result.workflow_id)
    if result.error is None:
        item.state, item.error = "moved", None
        return
    retry = result.error.code in ("does_not_fit", "infeasible", "contention")
    if retry and item.attempts <= RETRIES:
        item.state, item.target, item.error = "waiting", None, result.error.message
        waiting.append(item)
        return
    item.state, item.error = "failed", result.error.message


def _save(
    rt: Any, batch_id: uuid.UUID, items: list[Item], lock: threading.Lock, *, final: bool = False
) -> None:
    moved = sum(1 for i in items if i.state == "moved")
    failed = sum(1 for i in items if i.state == "failed")
    values: dict[str, Any] = {
        "items": [i.as_dict() for i in items],
        "moved": moved,
        "failed": failed,
        "updated_at": utcnow(),
    }
    if final:
        values["state"] = "succeeded" if not failed else ("partial" if moved else "failed")
    with lock, rt.db.write_session() as s:
        s.execute(update(MigrationBatch).where(MigrationBatch.id == batch_id).values(**values))


# -- reading -------------------------------------------------------------------------


def get(rt: Any, principal: Principal, batch_id: uuid.UUID) -> MigrationBatch:
    principal.require_operator()
    with rt.db.read_session() as s:
        row = s.get(MigrationBatch, batch_id)
        if row is None:
            raise NotFound("no such migration batch", field="id")
        return row


def recent(rt: Any, principal: Principal, limit: int = 20) -> list[MigrationBatch]:
    principal.require_operator()
    with rt.db.read_session() as s:
        return list(
            s.scalars(
                select(MigrationBatch).order_by(MigrationBatch.created_at.desc()).limit(limit)
            )
        )


def interrupt_stale(db: Any) -> int:
    """At start: a batch left running by a stopped controller ran its last move already.

    Each of its moves is a workflow that recovery resumed on its own; the batch
    itself is marked ``interrupted`` so the operator starts it again for the rest.
    """
    with db.write_session() as s:
        n = s.scalar(
            select(func.count())
            .select_from(MigrationBatch)
            .where(MigrationBatch.state == "running")
        )
        s.execute(
            update(MigrationBatch)
            .where(MigrationBatch.state == "running")
            .values(state="interrupted", updated_at=utcnow())
        )
        return int(n or 0)
