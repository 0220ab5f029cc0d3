"""``fuyun``: serve the control plane, and talk to it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from fuyun import __version__
from fuyun.cli import drift, migration, networking, policy, qos, resources, scaleout, telemetry
from fuyun.cli.client import err, out, save_credentials
from fuyun.cli.fabric import fabric_app
from fuyun.cli.lab import agent, lab_app
from fuyun.cli.plan import plan_app
from fuyun.cli.route_leaks import leak_app

app = typer.Typer(
    help="fuyun: compute and network of a multi-tenant data center, together.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(fabric_app, name="fabric")
app.add_typer(lab_app, name="lab")
app.command()(agent)
app.add_typer(plan_app, name="plan")
app.add_typer(resources.tenant_app, name="tenant")
app.add_typer(resources.user_app, name="user")
app.add_typer(resources.token_app, name="token")
app.add_typer(resources.host_app, name="host")
app.add_typer(resources.vm_app, name="vm")
app.add_typer(resources.group_app, name="group")
app.add_typer(resources.workflow_app, name="workflow")
app.add_typer(networking.network_app, name="network")
app.add_typer(policy.sg_app, name="sg")
app.add_typer(policy.global_app, name="global-rule")
app.add_typer(policy.device_app, name="device")
app.add_typer(qos.qos_app, name="qos")
app.add_typer(networking.port_app, name="port")
app.add_typer(leak_app, name="route-leak")
app.add_typer(telemetry.traffic_app, name="traffic")
app.add_typer(drift.drift_app, name="drift")
app.add_typer(
    resources.make_list_command("/sites", ["name", "city", "id"], "Sites (data centers)."),
    name="site",
)
module_app = resources.make_list_command(
    "/modules",
    ["name", "fabric_kind", "l2_technology", "enforcement_point", "id"],
    "Network modules (pods).",
)
app.add_typer(module_app, name="module")
migration.install(app, resources.host_app, module_app)
app.add_typer(
    resources.make_list_command(
        "/switches",
        ["name", "role", "platform", "used_mac", "mac_capacity", "used_vlans", "vlan_capacity"],
        "ToR and aggregation switches.",
    ),
    name="switch",
)
app.add_typer(
    resources.make_list_command(
        "/flavors", ["name", "vcpus", "ram_mb", "disk_gb", "bandwidth_mbps"], "VM flavors."
    ),
    name="flavor",
)
app.command()(resources.login)
app.command()(resources.audit)
app.command()(resources.explain)
app.command()(policy.verify)
app.command()(telemetry.collector)
app.command()(scaleout.worker)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    fabric: Annotated[
        str,
        typer.Option(
            help="on first start: a preset (small, default, tencent-2010) or a fabric YAML file"
        ),
    ] = "default",
    demo: Annotated[bool, typer.Option(help="also seed partner tenants with VMs")] = False,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="FUYUN_DATABASE_URL", help="SQLAlchemy URL; SQLite file by default"),
    ] = None,
    log_level: Annotated[str, typer.Option()] = "info",
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="API processes sharing HOST:PORT (PostgreSQL)")
    ] = 1,
    lab: Annotated[
        bool, typer.Option(help="bring up the lab for the fabric and drive it with the agent")
    ] = False,
    lab_dir: Annotated[Path, typer.Option(envvar="FUYUN_LAB_DIR")] = Path("/var/tmp/fuyun-lab"),
) -> None:
    """Run the control plane: API on HOST:PORT, store migrated and seeded on first start.

    Settings come from FUYUN_CONFIG (a TOML file) and FUYUN_* variables; see docs/deploy.md.
    """
    import uvicorn

    from fuyun.api.app import create_app
    from fuyun.api.asgi import freeze_startup_objects
    from fuyun.config import Settings
    from fuyun.domain.errors import FuyunError
    from fuyun.drivers.compute import create_driver
    from fuyun.drivers.network import create_network_driver
    from fuyun.services.bootstrap import bootstrap, resync_driver, seed_demo
    from fuyun.services.reconcile import ReconcileLoop
    from fuyun.services.runtime import Runtime
    from fuyun.store.engine import Database, is_sqlite
    from fuyun.workflows.worker import Worker

    started = time.monotonic()
    try:
        settings = Settings.from_env(database_url=database_url)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if workers > 1 and is_sqlite(settings.database_url):
        err.print(
            "[red]error:[/red] --workers needs PostgreSQL (FUYUN_DATABASE_URL) [field: workers]"
        )
        raise typer.Exit(2)
    try:
        db = Database(settings.database_url)
        runtime = Runtime(db, settings, create_driver(settings.compute_driver))
        result = bootstrap(db, settings, runtime.driver, fabric=fabric, demo=False)
        if runtime.driver.name == "fake":
            # Only an in-memory hypervisor forgets; a real one is compared, not refilled
            # (``fuyun drift``).
            resync_driver(db, runtime.driver)
        # Finish or undo what a previous run left mid-way (single node: all of it).
        recovered = runtime.engine.recover(force=db.is_sqlite)
        if db.is_sqlite:  # one node: a batch still "running" lost its runner
            from fuyun.services.migration.batch import interrupt_stale

            interrupt_stale(db)
        if demo:
            result = replace(result, demo_vms=seed_demo(runtime))
    except FuyunError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if lab:
        _start_lab(db, lab_dir, settings)
    elif settings.reconcile_in_process:
        # One network driver for the loop and for moves, so both see the same devices.
        ReconcileLoop(db, runtime.network or create_network_driver(settings.network_driver)).start()
    if not db.is_sqlite and settings.workflow_runner == "inline":
        # Inline on PostgreSQL, beside other API processes: take over what a dead one
        # left behind, after its lease. (In queue mode `fuyun worker` does this.)
        Worker(runtime.engine, concurrency=1, poll_s=5.0).start()
    collecting = _start_collector(settings, db)
    url = f"http://{host}:{port}"
    saved = save_credentials(url, result.token)
    out.print(
        f"[bold]fuyun {__version__}[/bold] on {db.engine.dialect.name} "
        f"({result.hosts} hosts; ready in {time.monotonic() - started:.1f} s)"
    )
    out.print(f"portal:   {url}/   (sign in as admin, or as a partner)")
    out.print(f"API:      {url}/api/v1   (docs: {url}/api/v1/docs)")
    out.print(f"operator token: {result.token}")
    if result.admin_password:
        out.print(f"operator sign-in: admin / {result.admin_password}  (shown once)")
    if recovered:
        out.print(
            f"recovered {len(recovered)} interrupted workflows: "
            + ", ".join(f"{o.id} {o.state}" for o in recovered)
        )
    if result.demo_vms:
        out.print(
            f"demo: {result.demo_vms} VMs for partners; sign in as <tenant>-admin "
            "with password <tenant>-demo"
        )
    if collecting:
        out.print(f"sFlow:    udp {collecting[0]}:{collecting[1]}")
    out.print(f"credentials for the CLI saved in {saved}", highlight=False)
    if workers > 1:
        _run_processes(settings, host, port, workers, log_level)
        return
    # The scheduler's snapshot (150 MiB at 100,000 hosts) lives as long as the process:
    # load it now, before the freeze, so full collections never walk it, and the first
    # placement does not wait for it.
    runtime.placement.scheduler()
    freeze_startup_objects()
    uvicorn.run(
        create_app(settings, runtime=runtime),
        host=host,
        port=port,
        log_level=log_level,
    )


def _start_collector(settings: Any, db: Any) -> tuple[str, int] | None:
    """The sFlow collector beside the API when ``FUYUN_COLLECTOR_PORT`` is set (not 0)."""
    if not settings.collector_port:
        return None
    from fuyun.domain.errors import FuyunError
    from fuyun.services.traffic import make_collector
    from fuyun.telemetry.collector import CollectorThread

    try:
        thread = CollectorThread(
            make_collector(settings, db), settings.collector_host, settings.collector_port
        )
    except (OSError, FuyunError) as exc:
        err.print(f"[red]error:[/red] sFlow collector: {getattr(exc, 'message', exc)}")
        raise typer.Exit(2) from exc
    thread.start()
    return str(thread.address[0]), int(thread.address[1])


def _run_processes(settings: object, host: str, port: int, workers: int, log_level: str) -> None:
    """``workers`` uvicorn processes on one socket, each building the app from the
    environment (:mod:`fuyun.api.asgi`); their metrics merge in a shared directory."""
    import os
    import tempfile

    import uvicorn

    from fuyun.config import Settings

    assert isinstance(settings, Settings)
    os.environ["FUYUN_DATABASE_URL"] = settings.database_url
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fuyun-metrics-"))
    uvicorn.run(
        "fuyun.api.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )


def _start_lab(db: Any, lab_dir: Path, settings: Any = None) -> tuple[Any, Any]:
    """The lab as the network's target: one bridge per host, the agent converging all
    hosts and the lab's network node (tenant routers, DHCP and DNS)."""
    from fuyun.agent import (
        AgentLoop,
        HostAgent,
        NetworkServicesAgent,
        StoreNetworkServices,
        StoreSource,
    )
    from fuyun.config import Settings
    from fuyun.fabric.loader import export_from_store
    from fuyun.lab import Lab

    with db.read_session() as s:
        spec = export_from_store(s)
    lab = Lab(lab_dir)
    manifest = lab.up(spec)
    services = NetworkServicesAgent(
        StoreNetworkServices(db, settings or Settings.from_env(database_url=db.url)),
        lab.network_node(),
    )
    loop = AgentLoop(
        HostAgent(StoreSource(db), lab.driver()), sorted(lab.hosts()), 0.2, services=services
    )
    loop.start()
    out.print(
        f"lab {manifest.tag} up in {manifest.up_seconds:.1f} s ({len(lab.hosts())} hosts) "
        f"in {lab_dir}; `fuyun lab down --dir {lab_dir}` removes it"
    )
    return lab, loop


if __name__ == "__main__":  # pragma: no cover
    app()
