"""CLI for moves: ``fuyun migrate [plan] VM``, host evacuate, tor drain, module rebalance.

A batch command starts the batch and follows it with a Rich progress bar until it
ends, then prints each VM's outcome; it exits 2 if any VM could not move (the
reasons are printed), so a script notices.
"""

from __future__ import annotations

import inspect
import time
import uuid
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fuyun.cli.client import call, fail, out
from fuyun.cli.tables import show, show_one

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
ToOpt = Annotated[str | None, typer.Option("--to", help="target host")]
TorOpt = Annotated[str | None, typer.Option("--to-tor", help="any host below this ToR")]
ModuleOpt = Annotated[str | None, typer.Option("--to-module", help="any host of this module")]
SiteOpt = Annotated[str | None, typer.Option("--to-site", help="any host of this site")]
PerHost = Annotated[int, typer.Option(help="moves at once touching one host")]
PerTor = Annotated[int, typer.Option(help="moves at once touching one ToR")]
PerSite = Annotated[int, typer.Option(help="moves at once touching one site")]
Workers = Annotated[int, typer.Option(help="moves at once in all")]
POLL_S = 0.2


def vm_id_of(ref: str) -> str:
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    found = [
        v for v in call("GET", "/vms", params={"name_prefix": ref})["items"] if v["name"] == ref
    ]
    if len(found) != 1:
        what = "no VM" if not found else f"{len(found)} VMs"
        raise fail(f"{what} named '{ref}'; give its id")
    return str(found[0]["id"])


def _print_plan(plan: dict[str, Any]) -> None:
    verdict = "[green]yes[/green]" if plan["feasible"] else "[red]no[/red]"
    target = plan["target_host"] or "-"
    out.print(
        f"{escape(plan['vm'])}: {escape(plan['source_host'])} -> {escape(target)} "
        f"({plan['scope'] or 'no target'}, chosen by {plan['chosen_by']}): {verdict}"
    )
    for reason in plan["reasons"]:
        out.print(f"  [red]✗[/red] {escape(reason)}")
    if plan["feasible"]:
        out.print("keeps its IP and MAC; the move will:")
        for line in plan["changes"]:
            out.print(f"  {escape(line)}")
    for note in plan["notes"]:
        out.print(f"  [dim]{escape(note)}[/dim]")


def migrate(
    words: Annotated[list[str], typer.Argument(metavar="[plan] VM | list | site-plan SITE")],
    to: ToOpt = None,
    to_tor: TorOpt = None,
    to_module: ModuleOpt = None,
    to_site: SiteOpt = None,
    max_downtime_ms: Annotated[int, typer.Option(help="downtime the hypervisor may take")] = 300,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="--no-wait: start the move, then follow its steps with a progress bar",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Plan a move (`migrate plan VM`) or make it (`migrate VM`), keeping IP and MAC.

    With no --to*, the scheduler picks the target. `migrate list` shows past moves;
    `migrate site-plan SITE [--to-site S]` says which VMs of a lost site keep their IPs.
    """
    target = {"to": to, "to_tor": to_tor, "to_module": to_module, "to_site": to_site}
    body = {k: v for k, v in target.items() if v is not None}
    if words == ["list"]:
        rows = call("GET", "/migrations")["items"]
        show(
            rows, ["id", "vm_id", "state", "target", "scope", "progress", "error"], as_json=as_json
        )
        return
    if len(words) == 2 and words[0] == "site-plan":
        _site_plan(words[1], to_site, as_json)
        return
    if len(words) == 2 and words[0] == "plan":
        plan = call("POST", f"/vms/{vm_id_of(words[1])}/migration-plan", json_body=body)
        if as_json:
            show_one(plan, as_json=True)
        else:
            _print_plan(plan)
        if not plan["feasible"]:
            raise typer.Exit(2)
        return
    if len(words) != 1:
        raise fail("usage: fuyun migrate [plan] VM [--to HOST|--to-tor|--to-module|--to-site]")
    body["max_downtime_ms"] = max_downtime_ms
    started = time.monotonic()
    path = f"/vms/{vm_id_of(words[0])}/migrate"
    if not wait:
        result = call("POST", path, json_body=body, params={"wait": "false"})
        _follow_move(result, started, as_json)
        return
    result = call("POST", path, json_body=body)
    if as_json:
        show_one(result, as_json=True)
        return
    plan = result["plan"]
    out.print(
        f"moved {escape(plan['vm'])}: {escape(plan['source_host'])} -> "
        f"{escape(plan['target_host'])} ({plan['scope']}) in {time.monotonic() - started:.2f} s; "
        f"workflow {result['workflow_id']}"
    )


def _follow_move(started_move: dict[str, Any], started: float, as_json: bool) -> None:
    """Poll a started move step by step until it ends; exit 2 if it failed (rolled back)."""
    plan = started_move["plan"]
    path = f"/migrations/{started_move['workflow_id']}"
    move = call("GET", path)
    with Progress(
        TextColumn(f"{escape(plan['vm'])} -> {escape(plan['target_host'])}"),
        BarColumn(),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
        console=out,
        transient=as_json,
        disable=as_json,
    ) as progress:
        task = progress.add_task("", total=len(move["steps"]) or 1, step="")
        while True:
            done = sum(1 for st in move["steps"] if st["state"] == "done")
            now = next((st["name"] for st in move["steps"] if st["state"] == "running"), "")
            progress.update(task, completed=done, step=now)
            if move["state"] not in ("pending", "running"):
                break
            time.sleep(POLL_S)
            move = call("GET", path)
    if as_json:
        show_one(move, as_json=True)
    elif move["state"] == "succeeded":
        stats = move.get("stats") or {}
        figures = (
            f"; downtime {stats['downtime_ms']:.0f} ms of {stats['total_ms']:.0f} ms"
            if "downtime_ms" in stats
            else ""
        )
        out.print(
            f"moved {escape(plan['vm'])}: {escape(plan['source_host'])} -> "
            f"{escape(plan['target_host'])} ({plan['scope']}) in "
            f"{time.monotonic() - started:.2f} s{figures}; workflow {move['id']}"
        )
    else:
        out.print(f"[red]{move['state']}[/red]: {escape(move['error'] or 'no reason given')}")
    if move["state"] != "succeeded":
        raise typer.Exit(2)


def _site_plan(site: str, to_site: str | None, as_json: bool) -> None:
    data = call("GET", f"/sites/{site}/evacuation-plan", params={"to_site": to_site})
    if as_json:
        show_one(data, as_json=True)
        return
    out.print(
        f"site {escape(site)}: {data['keep_ip']} VMs keep their IPs, "
        f"{data['readdress']} need new addresses"
    )
    show(
        data["vms"], ["vm", "tenant", "host", "keeps_ip", "target_host", "interconnects", "reasons"]
    )
    if data["groups"]:
        show(
            data["groups"],
            ["group", "tenant", "policy", "level", "in_site", "elsewhere", "survives"],
        )


def follow(batch: dict[str, Any], as_json: bool) -> None:
    """Poll a batch until it ends, with a progress bar; exit 2 if any VM failed."""
    path = f"/migration-batches/{batch['id']}"
    with Progress(
        TextColumn(f"{batch['kind']} {escape(batch['target'])}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=out,
        transient=as_json,
        disable=as_json,
    ) as progress:
        task = progress.add_task("", total=batch["total"] or 1, failed=0)
        while True:
            progress.update(
                task, completed=batch["moved"] + batch["failed"], failed=batch["failed"]
            )
            if batch["state"] != "running":
                break
            time.sleep(POLL_S)
            batch = call("GET", path)
        if not batch["total"]:
            progress.update(task, completed=1)
    if as_json:
        show_one(batch, as_json=True)
    else:
        out.print(f"{batch['state']}: {batch['moved']} moved, {batch['failed']} failed")
        show(batch["items"], ["vm", "source", "target", "scope", "state", "error"])
    if batch["failed"]:
        raise typer.Exit(2)


def batch_command(kind: str, path: str, doc: str) -> Any:
    """A batch command over one object (``{name}`` in ``path``) with the shared limits.

    Evacuate, drain and rebalance differ only in their object and endpoint; one
    factory keeps their options and output identical. The first parameter is
    renamed to ``kind`` in the signature Typer reads, so help shows ``HOST`` etc.
    """

    def command(
        name: str,
        per_host: PerHost = 2,
        per_tor: PerTor = 4,
        per_site: PerSite = 16,
        workers: Workers = 4,
        as_json: JsonOpt = False,
    ) -> None:
        limits = {"per_host": per_host, "per_tor": per_tor, "per_site": per_site}
        limits["workers"] = workers
        follow(call("POST", path.format(name=name), json_body=limits), as_json)

    def as_kind(**args: Any) -> None:
        command(args.pop(kind), **args)

    params = list(inspect.signature(command, eval_str=True).parameters.values())
    target = inspect.Parameter(
        kind,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[str, typer.Argument(help=f"the {kind}")],
    )
    as_kind.__signature__ = inspect.Signature([target, *params[1:]])  # type: ignore[attr-defined]
    as_kind.__doc__ = doc
    return as_kind


host_evacuate = batch_command(
    "host",
    "/hosts/{name}/evacuate",
    "Put the host into maintenance and move every VM off it (anti-affinity respected).",
)
tor_drain = batch_command(
    "tor",
    "/switches/{name}/drain",
    "Maintenance for every host below the ToR, then move all their VMs elsewhere.",
)
module_rebalance = batch_command(
    "module",
    "/modules/{name}/rebalance",
    "Move VMs from the module's fullest hosts to its emptiest.",
)


tor_app = typer.Typer(help="ToR switches: drain.", no_args_is_help=True)
tor_app.command("drain")(tor_drain)


def install(app: typer.Typer, host_app: typer.Typer, module_app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.add_typer(tor_app, name="tor")
    host_app.command("evacuate")(host_evacuate)
    module_app.command("rebalance")(module_rebalance)
