"""CLI verbs for route leaks: request one, list and show them, approve (operators), revoke.

The requesting side names its own network by name or id; the peer network is
another tenant's, so it is given by the id its owner shared.
"""

from __future__ import annotations

from typing import Annotated

import typer

from fuyun.cli.client import call, out
from fuyun.cli.networking import network_id_of
from fuyun.cli.resources import JsonOpt
from fuyun.cli.tables import show, show_one

leak_app = typer.Typer(
    help="Route leaks: routing between two VRFs, in force once an operator approves.",
    no_args_is_help=True,
)

COLUMNS = ["id", "state", "tenant", "network", "prefixes", "peer_tenant", "peer_network",
           "peer_prefixes", "requested_by", "approved_by"]  # fmt: skip


def _row(leak: dict) -> dict:
    return {
        **leak,
        "prefixes": ", ".join(leak["prefixes"]),
        "peer_prefixes": ", ".join(leak["peer_prefixes"]),
    }


@leak_app.command("list")
def leak_list(
    state: Annotated[str | None, typer.Option(help="pending or approved")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Leaks your tenant is a side of (operators: all; `--state pending` to review)."""
    items = call("GET", "/route-leaks", params={"state": state} if state else None)
    show(items if as_json else [_row(x) for x in items], COLUMNS, as_json=as_json)


@leak_app.command("request")
def leak_request(
    network: Annotated[str, typer.Argument(help="your network (name or id)")],
    peer_network: Annotated[str, typer.Argument(help="the other VRF's network id")],
    peer_prefix: Annotated[
        str | None, typer.Option(help="only this prefix of the peer network")
    ] = None,
    description: Annotated[str, typer.Option()] = "",
    approve: Annotated[bool, typer.Option(help="operators: create it approved")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ask for routing between two networks of two VRFs; pending until approved."""
    body = {
        "network_id": network_id_of(network),
        "peer_network_id": peer_network,
        "peer_prefix": peer_prefix,
        "description": description,
        "approve": approve,
    }
    made = call("POST", "/route-leaks", json_body={k: v for k, v in body.items() if v is not None})
    show_one(made if as_json else _row(made), as_json=as_json)


@leak_app.command("show")
def leak_show(leak_id: str, as_json: JsonOpt = False) -> None:
    got = call("GET", f"/route-leaks/{leak_id}")
    show_one(got if as_json else _row(got), as_json=as_json)


@leak_app.command("approve")
def leak_approve(leak_id: str, as_json: JsonOpt = False) -> None:
    """Operators: put the leak in force (ToRs and the network node route it)."""
    got = call("POST", f"/route-leaks/{leak_id}/approve")
    show_one(got if as_json else _row(got), as_json=as_json)


@leak_app.command("revoke")
def leak_revoke(leak_id: str) -> None:
    """Withdraw the leak's routes (either side's admin, or an operator)."""
    call("DELETE", f"/route-leaks/{leak_id}")
    out.print(f"route leak {leak_id} revoked")
