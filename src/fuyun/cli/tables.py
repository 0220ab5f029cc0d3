"""Rich tables for API objects, or JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from fuyun.cli.client import out


def show(
    items: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool = False,
    title: str | None = None,
) -> None:
    if as_json:
        out.print_json(json.dumps(list(items)))
        return
    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(c)
    for item in items:
        table.add_row(*(_cell(item.get(c)) for c in columns))
    out.print(table)


def show_one(item: dict[str, Any], *, as_json: bool = False) -> None:
    if as_json:
        out.print_json(json.dumps(item))
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for k, v in item.items():
        table.add_row(k, _cell(v))
    out.print(table)


def _cell(value: Any) -> str:
    """Plain text, never Rich markup: a value like ``[a]`` must print as itself."""
    if value is None:
        return "-"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return escape(", ".join(value))
    if isinstance(value, dict | list):
        return escape(json.dumps(value))
    return escape(str(value))
