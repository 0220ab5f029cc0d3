"""``fuyun lab up|down|status`` and ``fuyun agent``: the real data plane on this machine."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fuyun.cli.client import err, out

if TYPE_CHECKING:
    from fuyun.lab import Lab

lab_app = typer.Typer(help="A lab data center on this machine: Open vSwitch and namespaces.")

DEFAULT_DIR = "/var/tmp/fuyun-lab"
DirOption = Annotated[
    Path, typer.Option("--dir", envvar="FUYUN_LAB_DIR", help="the lab's private run directory")
]


def _lab(directory: Path) -> Lab:
    from fuyun.lab import Lab  # imported on use: the CLI starts without OVS libraries

    return Lab(directory)


@lab_app.command("up")
def lab_up(
    fabric: Annotated[str, typer.Option(help="a preset (small, ...) or a fabric YAML file")] = (
        "small"
    ),
    directory: DirOption = Path(DEFAULT_DIR),
) -> None:
    """Start fuyun's own OVS daemons and build a bridge per host, ToR and aggregation."""
    from fuyun.domain.errors import FuyunError
    from fuyun.services.bootstrap import resolve_fabric

    try:
        spec = resolve_fabric(fabric)
    except FuyunError as exc:
        err.print(f"[red]error:[/red] fabric: {exc.message}")
        raise typer.Exit(2) from exc
    if os.geteuid() != 0:
        err.print("[red]error:[/red] the lab needs root (namespaces, Open vSwitch)")
        raise typer.Exit(2)
    try:
        m = _lab(directory).up(spec)
    except FuyunError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    hosts = sum(1 for b in m.bridges if b["role"] == "host")
    out.print(
        f"lab {m.tag} up in {m.up_seconds:.1f} s: {len(m.bridges)} bridges ({hosts} hosts), "
        f"{len(m.trunks)} trunks; switch namespace {m.switch_netns}; run directory {directory}"
    )


@lab_app.command("down")
def lab_down(directory: DirOption = Path(DEFAULT_DIR)) -> None:
    """Stop the lab's daemons and remove every namespace, link and file it made."""
    removed = _lab(directory).down()
    if not removed:
        out.print(f"no lab in {directory}")
        return
    for line in removed:
        out.print(f"removed {line}", highlight=False)


@lab_app.command("status")
def lab_status(
    directory: DirOption = Path(DEFAULT_DIR),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Daemons, bridges, VM namespaces and VM ports per host."""
    status = _lab(directory).status()
    if as_json:
        print(json.dumps(asdict(status), indent=1))
        return
    if not status.tag:
        out.print(f"no lab in {directory}")
        raise typer.Exit(1)
    out.print(
        f"lab {status.tag}: {'up' if status.up else 'DOWN'}; daemons "
        + ", ".join(f"{k} {v or '-'}" for k, v in status.daemons.items())
    )
    out.print(f"{status.bridges} bridges, {status.hosts} hosts, {len(status.vm_namespaces)} VMs")
    out.print(f"{len(status.routers)} tenant routers, {status.dhcp_servers} DHCP/DNS servers")
    for host, ports in sorted(status.ports.items()):
        if ports:
            out.print(f"  {host}: {ports} VM ports")


def agent(
    host: Annotated[list[str], typer.Option("--host", help="host to converge (repeatable)")],
    interval: Annotated[float, typer.Option(help="seconds between passes")] = 0.5,
    lab_dir: Annotated[
        Path | None, typer.Option("--lab", help="drive this lab's switch instead")
    ] = None,
    database_url: Annotated[str | None, typer.Option(envvar="FUYUN_DATABASE_URL")] = None,
    api: Annotated[
        list[str] | None,
        typer.Option(envvar="FUYUN_URL", help="read desired state from this API (repeatable)"),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="FUYUN_AGENT_TOKEN", help="the host's fyh_ credential")
    ] = None,
) -> None:
    """Converge hosts' switches to their desired state (ports, policy, QoS), on level.

    With ``--api`` (``FUYUN_URL``) and the host credential (``FUYUN_AGENT_TOKEN``) the
    desired state comes from the controllers' watch API; otherwise from the database.
    With ``--lab`` the agent also runs the lab's network node — tenant routers, route
    leaks, DHCP and DNS — for the lab's networks from the database, or with ``--api``
    for the networks of the first ``--host``'s module, read with that host's credential.
    """
    from fuyun.agent import (
        AgentLoop,
        HostAgent,
        NetworkServicesAgent,
        StoreNetworkServices,
        StoreSource,
    )
    from fuyun.agent.api_source import ApiNetworkServices, ApiSource
    from fuyun.config import Settings
    from fuyun.domain.errors import FuyunError
    from fuyun.drivers.network import create_network_driver
    from fuyun.store.engine import Database

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env(database_url=database_url)
    try:
        driver = (
            _lab(lab_dir).driver() if lab_dir else create_network_driver(settings.network_driver)
        )
    except FuyunError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if api and not token:
        err.print("[red]error:[/red] --api needs the host credential (--token) [field: token]")
        raise typer.Exit(2)
    source = (
        ApiSource([u.rstrip("/") for u in api], token or "")
        if api
        else StoreSource(Database(settings.database_url))
    )
    services = None
    if lab_dir:  # the lab's network node: from the API (the host's module) or the store
        services = NetworkServicesAgent(
            ApiNetworkServices([u.rstrip("/") for u in api], token or "", host[0])
            if api
            else StoreNetworkServices(Database(settings.database_url), settings),
            _lab(lab_dir).network_node(),
        )
    loop = AgentLoop(HostAgent(source, driver), host, interval, services=services)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    extra = " and the lab's network services" if services else ""
    out.print(f"agent for {', '.join(host)} with the {driver.name} driver{extra}")
    loop.start()
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    loop.stop()
