"""CLI verbs for drift: see where hypervisors and the store disagree, repair or adopt."""

from __future__ import annotations

from typing import Annotated

import typer

from fuyun.cli.client import call, out
from fuyun.cli.resources import JsonOpt
from fuyun.cli.tables import show, show_one

drift_app = typer.Typer(
    help="What hypervisors run against what the store says; repair or adopt.",
    invoke_without_command=True,
)

COLUMNS = ["host", "vm_id", "kind", "store_state", "observed", "vm_name", "actions"]


@drift_app.callback()
def drift_scan(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="one host; default: every host with VMs")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List drift (the default when no verb is given)."""
    if ctx.invoked_subcommand is not None:
        return
    report = call("GET", "/drift", params={"host": host} if host else None)
    items = [{**d, "actions": ",".join(d["actions"])} for d in report["items"]]
    if as_json:
        show(report["items"], COLUMNS, as_json=True)
        return
    accel = f", {report['accelerator']}" if report.get("accelerator") else ""
    show(items, COLUMNS, title=f"drift ({report['compute_driver']} driver{accel})")
    if not items:
        out.print("no drift")


@drift_app.command("repair")
def drift_repair(host: str, vm_id: str, as_json: JsonOpt = False) -> None:
    """Make the hypervisor obey the store: restart, stop, re-create, or delete a stray."""
    show_one(
        call("POST", "/drift/repair", json_body={"host": host, "vm_id": vm_id}), as_json=as_json
    )


@drift_app.command("adopt")
def drift_adopt(
    host: str,
    vm_id: str,
    tenant: Annotated[str | None, typer.Option(help="for an unknown instance")] = None,
    flavor: Annotated[str | None, typer.Option(help="for an unknown instance")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make the store agree with the hypervisor."""
    body = {"host": host, "vm_id": vm_id, "tenant": tenant, "flavor": flavor}
    show_one(
        call("POST", "/drift/adopt", json_body={k: v for k, v in body.items() if v}),
        as_json=as_json,
    )
