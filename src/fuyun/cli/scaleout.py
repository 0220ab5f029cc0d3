"""Scale-out commands: ``fuyun worker`` and the host agent credentials of ``fuyun host``."""

from __future__ import annotations

import signal
import threading
import time
from typing import Annotated

import typer

from fuyun.cli.client import call, err, out
from fuyun.cli.resources import JsonOpt, host_app
from fuyun.cli.tables import show_one


def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="workflows run at once (FUYUN_WORKER_CONCURRENCY)")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(envvar="FUYUN_DATABASE_URL", help="SQLAlchemy URL of the shared store"),
    ] = None,
    metrics_port: Annotated[
        int,
        typer.Option(
            envvar="FUYUN_WORKER_METRICS_PORT",
            min=0,
            max=65535,
            help="serve Prometheus metrics on this port (0: off)",
        ),
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option(envvar="FUYUN_WORKER_METRICS_HOST", help="address for --metrics-port")
    ] = "127.0.0.1",
) -> None:
    """Run workflows: claim queued and orphaned ones from the store until SIGTERM/SIGINT.

    Run any number, on any machines, against one PostgreSQL database; the API enqueues
    when FUYUN_WORKFLOW_RUNNER=queue. With --metrics-port, the workflows this worker
    ran (ends, durations, step failures, takeovers) are served for Prometheus.
    """
    from fuyun.config import Settings
    from fuyun.drivers.compute import create_driver
    from fuyun.services.bootstrap import resync_driver
    from fuyun.services.memory import settle_after_startup
    from fuyun.services.runtime import Runtime
    from fuyun.store.engine import Database
    from fuyun.store.migrate import upgrade
    from fuyun.workflows.worker import Worker

    try:
        settings = Settings.from_env(database_url=database_url, worker_concurrency=concurrency)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    db = Database(settings.database_url)
    upgrade(db.engine)
    runtime = Runtime(db, settings, create_driver(settings.compute_driver))
    resync_driver(db, runtime.driver)
    pool = Worker(runtime.engine, concurrency=settings.worker_concurrency)
    if metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            err.print(f"[red]error:[/red] --metrics-port {metrics_port}: {exc}")
            raise typer.Exit(2) from exc
    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    settle_after_startup()  # before the pool's threads allocate per workflow
    pool.start()
    out.print(
        f"fuyun worker {runtime.engine.owner} on {db.engine.dialect.name}: "
        f"{settings.worker_concurrency} at once, lease {settings.workflow_lease_s} s",
        highlight=False,
    )
    while not stopping.wait(1.0):
        pass
    started = time.monotonic()
    pool.stop()
    out.print(
        f"stopped after {time.monotonic() - started:.1f} s: {pool.stats.finished} workflows "
        f"finished, {pool.stats.abandoned} left to other workers",
        highlight=False,
    )


@host_app.command("agent-credential")
def agent_credential(host: str, as_json: JsonOpt = False) -> None:
    """Issue the credential `fuyun agent --host HOST` authenticates with (shown once)."""
    data = call("POST", f"/hosts/{host}/agent-credentials")
    if as_json:
        show_one(data, as_json=True)
        return
    out.print(f"agent credential for {data['host']} (shown once): {data['token']}")


@host_app.command("agent-credentials")
def agent_credentials(host: str, as_json: JsonOpt = False) -> None:
    """List a host's agent credentials (prefixes, when last seen, revoked or not)."""
    rows = call("GET", f"/hosts/{host}/agent-credentials")
    for row in rows:
        show_one(row, as_json=as_json)


@host_app.command("revoke-agent-credential")
def revoke_agent_credential(credential_id: str) -> None:
    call("DELETE", f"/agent-credentials/{credential_id}")
    out.print(f"revoked {credential_id}")
