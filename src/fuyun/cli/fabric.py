"""``fuyun fabric``: generate, check, import and export fabric files.

These commands work on files and on the store directly (not through the API), the
way an operator prepares a module before it is handed over. Exit codes: 0 when all
is well, 1 when the fabric has errors (the findings are printed), 2 when the input
cannot be used at all (an unreadable or invalid file, a refused import).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from fuyun.domain.errors import FuyunError
from fuyun.fabric.check import Finding, Severity, check_fabric
from fuyun.fabric.generator import PRESETS, generate, list_presets
from fuyun.fabric.loader import export_from_store, load_into_store
from fuyun.fabric.spec import FabricSpec
from fuyun.fabric.yamlio import dump_fabric, load_fabric
from fuyun.store.engine import Database
from fuyun.store.migrate import upgrade

fabric_app = typer.Typer(
    help="Fabric files: generate simulated fabrics, check, import into and export from the store.",
    no_args_is_help=True,
)

DEFAULT_DATABASE_URL = "sqlite:///fuyun.db"

OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="write here instead of standard output")
]


def _out() -> Console:
    # Made per call, so the console binds to the stream in use (CliRunner swaps them).
    return Console()


def _print(line: str) -> None:
    _out().print(line, markup=False, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console = Console(stderr=True)
    console.print("[red]error:[/red] ", end="")
    # Unwrapped and unmarked: the message may hold brackets (hosts[12]) and long lines.
    console.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _database() -> Database:
    return Database(os.environ.get("FUYUN_DATABASE_URL", DEFAULT_DATABASE_URL))


def _live_spec() -> FabricSpec:
    """The fabric as the store holds it now."""
    db = _database()
    try:
        with db.read_session() as session:
            return export_from_store(session)
    finally:
        db.dispose()


def _read(file: Path) -> FabricSpec:
    try:
        return load_fabric(file)
    except FuyunError as exc:
        raise _fail(f"{file}: {exc.message}") from None


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _summary(spec: FabricSpec) -> str:
    return (
        f"{spec.name}: {len(spec.sites)} sites, {len(spec.modules)} modules, "
        f"{len(spec.switches)} switches, {len(spec.hosts)} hosts"
    )


def _show_findings(findings: list[Finding], max_rows: int) -> None:
    if not findings:
        return
    table = Table(header_style="bold")
    for column in ("severity", "place", "field", "message"):
        table.add_column(column, overflow="fold")
    for f in findings[:max_rows]:
        style = "red" if f.severity is Severity.ERROR else "yellow"
        table.add_row(f"[{style}]{f.severity}[/{style}]", f.place, f.field, f.message)
    out = _out()
    out.print(table, highlight=False)
    if len(findings) > max_rows:
        _print(f"… and {len(findings) - max_rows} more findings")


@fabric_app.command("generate")
def generate_command(
    preset: Annotated[str, typer.Argument(help="a preset name; see `fuyun fabric presets`")],
    seed: Annotated[int, typer.Option(help="random seed; equal seeds give equal fabrics")] = 0,
    output: OutputOption = None,
) -> None:
    """Generate a simulated fabric and write it as YAML."""
    if preset not in PRESETS:
        raise _fail(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    spec = generate(preset, seed=seed)
    _write(dump_fabric(spec), output)
    if output is not None:
        _print(f"wrote {output}: {_summary(spec)}")


@fabric_app.command("check")
def check_command(
    file: Annotated[Path | None, typer.Argument(help="fabric YAML file")] = None,
    live: Annotated[bool, typer.Option("--live", help="check the fabric in the store")] = False,
    max_rows: Annotated[int, typer.Option(help="findings to print at most")] = 200,
) -> None:
    """Run the acceptance check; exit 1 if it finds errors, 2 if the file is unusable."""
    if live == (file is not None):
        raise _fail("give a FILE or --live, not both")
    if live:
        try:
            spec = _live_spec()
        except (FuyunError, SQLAlchemyError) as exc:
            raise _fail(f"cannot read the store: {exc}") from None
    else:
        assert file is not None
        spec = _read(file)
    findings = check_fabric(spec)
    _show_findings(findings, max_rows)
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    _print(f"{_summary(spec)}: {errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


@fabric_app.command("presets")
def presets_command() -> None:
    """List the generator's presets."""
    table = Table(header_style="bold", box=box.SIMPLE_HEAD)
    for column in ("preset", "sites", "modules", "ToRs/mod", "hosts/ToR", "hosts", "about"):
        table.add_column(column, no_wrap=column != "about")
    for p in list_presets():
        hosts = f"{p.min_hosts:,}" if p.min_hosts == p.max_hosts else f"{p.min_hosts}-{p.max_hosts}"
        table.add_row(
            p.name,
            str(p.sites),
            str(p.modules),
            _span(p.tors_per_module),
            _span(p.hosts_per_tor),
            hosts,
            p.description,
        )
    _out().print(table, highlight=False)


def _span(low_high: tuple[int, int]) -> str:
    low, high = low_high
    return str(low) if low == high else f"{low}-{high}"


@fabric_app.command("export")
def export_command(output: OutputOption = None) -> None:
    """Write the fabric in the store as YAML."""
    try:
        spec = _live_spec()
    except (FuyunError, SQLAlchemyError) as exc:
        raise _fail(f"cannot read the store: {exc}") from None
    _write(dump_fabric(spec), output)


@fabric_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="fabric YAML file")],
) -> None:
    """Check a fabric file and load it into the store, all or nothing."""
    spec = _read(file)
    findings = check_fabric(spec)
    if any(f.severity is Severity.ERROR for f in findings):
        _show_findings(findings, 200)
        raise _fail(f"{file} fails the acceptance check; nothing was imported", code=1)
    db = _database()
    try:
        upgrade(db.engine)
        with db.write_session() as session:
            summary = load_into_store(session, spec)
    except FuyunError as exc:
        raise _fail(exc.message) from None
    finally:
        db.dispose()
    _print(
        f"imported {_summary(spec)} in {summary.seconds:.1f} s "
        f"({summary.reused_catalog} catalog entries already there)"
    )
