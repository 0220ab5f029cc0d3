"""CLI verbs for security groups and rules, global rules, device state and verify."""

from __future__ import annotations

from typing import Annotated

import typer

from fuyun.cli.client import call, out
from fuyun.cli.resources import JsonOpt, tenant_id_of
from fuyun.cli.tables import show, show_one

sg_app = typer.Typer(help="Security groups and their rules.", no_args_is_help=True)
global_app = typer.Typer(help="Operator rules on every port.", no_args_is_help=True)
device_app = typer.Typer(help="Devices' desired and applied state.", no_args_is_help=True)

RULE_COLUMNS = [
    "id",
    "direction",
    "ethertype",
    "protocol",
    "port_min",
    "port_max",
    "remote_cidr",
    "remote_group_id",
]


def group_id_of(ref: str) -> str:
    groups = call("GET", "/security-groups")
    exact = [g for g in groups if g["name"] == ref]
    if len(exact) > 1:
        raise typer.BadParameter(f"several groups are named {ref}; use the id")
    return exact[0]["id"] if exact else ref


@sg_app.command("list")
def sg_list(as_json: JsonOpt = False) -> None:
    show(
        call("GET", "/security-groups"), ["id", "name", "tenant_id", "description"], as_json=as_json
    )


@sg_app.command("sets")
def sg_sets(
    group: Annotated[str | None, typer.Argument(help="a group's name or id (default: all)")] = None,
    members: Annotated[bool, typer.Option(help="print each set's addresses")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Address sets: each group's members per family, stored once and versioned."""
    params = {"group_id": group_id_of(group)} if group else None
    sets = call("GET", "/address-sets", params=params)
    if members:
        sets = [call("GET", f"/address-sets/{s['name']}") for s in sets]
    columns = ["name", "family", "generation", "size", "devices"]
    show(sets, columns + (["addresses"] if members else []), as_json=as_json)


@sg_app.command("create")
def sg_create(
    name: str,
    description: Annotated[str, typer.Option()] = "",
    tenant: Annotated[str | None, typer.Option(help="operators")] = None,
) -> None:
    data = call(
        "POST",
        "/security-groups",
        json_body={
            "name": name,
            "description": description,
            "tenant_id": tenant_id_of(tenant) if tenant else None,
        },
    )
    out.print(f"security group {data['name']}: {data['id']}")


@sg_app.command("show")
def sg_show(group: str, as_json: JsonOpt = False) -> None:
    data = call("GET", f"/security-groups/{group_id_of(group)}")
    if as_json:
        show_one(data, as_json=True)
        return
    out.print(f"[bold]{data['name']}[/bold] {data['description']}")
    show(data["rules"], RULE_COLUMNS)


@sg_app.command("delete")
def sg_delete(group: str) -> None:
    call("DELETE", f"/security-groups/{group_id_of(group)}")
    out.print(f"deleted {group}")


def _rule_body(
    direction: str,
    protocol: str,
    port: str | None,
    ethertype: int,
    remote_cidr: str | None,
    remote_group: str | None,
) -> dict[str, object]:
    body: dict[str, object] = {"direction": direction, "protocol": protocol, "ethertype": ethertype}
    if port:
        lo, _, hi = port.partition("-")
        try:
            body["port_min"], body["port_max"] = int(lo), int(hi or lo)
        except ValueError:
            raise typer.BadParameter("--port is N or N-M") from None
    if remote_cidr:
        body["remote_cidr"] = remote_cidr
    if remote_group:
        body["remote_group"] = remote_group
    return body


Direction = Annotated[str, typer.Option(help="ingress or egress")]
Protocol = Annotated[str, typer.Option(help="any, tcp, udp, icmp")]
PortOpt = Annotated[str | None, typer.Option(help="a port or a range N-M")]
Family = Annotated[int, typer.Option(help="4 or 6")]
Cidr = Annotated[str | None, typer.Option(help="remote prefix")]


@sg_app.command("rule-add")
def rule_add(
    group: str,
    direction: Direction = "ingress",
    protocol: Protocol = "any",
    port: PortOpt = None,
    ethertype: Family = 4,
    remote_cidr: Cidr = None,
    remote_group: Annotated[str | None, typer.Option(help="a group")] = None,
) -> None:
    """Allow traffic; affected devices are recompiled before this returns."""
    data = call(
        "POST",
        f"/security-groups/{group_id_of(group)}/rules",
        json_body=_rule_body(direction, protocol, port, ethertype, remote_cidr, remote_group),
    )
    out.print(f"rule {data['id']} added to {group}")


@sg_app.command("rule-delete")
def rule_delete(rule_id: str) -> None:
    call("DELETE", f"/security-group-rules/{rule_id}")
    out.print(f"deleted rule {rule_id}")


@global_app.command("list")
def global_list(as_json: JsonOpt = False) -> None:
    show(
        call("GET", "/global-rules"),
        ["id", "action", "priority", *RULE_COLUMNS[1:7]],
        as_json=as_json,
    )


@global_app.command("add")
def global_add(
    action: Annotated[str, typer.Option(help="allow or deny")],
    direction: Direction = "ingress",
    protocol: Protocol = "any",
    port: PortOpt = None,
    ethertype: Family = 4,
    remote_cidr: Cidr = None,
    priority: Annotated[int, typer.Option()] = 100,
) -> None:
    body = {
        **_rule_body(direction, protocol, port, ethertype, remote_cidr, None),
        "action": action,
        "priority": priority,
    }
    data = call("POST", "/global-rules", json_body=body)
    out.print(f"global rule {data['id']} ({action})")


@global_app.command("delete")
def global_delete(rule_id: str) -> None:
    call("DELETE", f"/global-rules/{rule_id}")
    out.print(f"deleted global rule {rule_id}")


@device_app.command("list")
def device_list(
    lagging: Annotated[bool, typer.Option("--lagging")] = False, as_json: JsonOpt = False
) -> None:
    show(
        call("GET", "/devices", params={"lagging": str(lagging).lower()}),
        [
            "device_type",
            "device_name",
            "enforcement_point",
            "flavor",
            "desired_generation",
            "applied_generation",
        ],
        as_json=as_json,
    )


@device_app.command("show")
def device_show(
    device_type: str,
    device_name: str,
    enforcement_point: Annotated[
        str | None, typer.Option("--enforcement-point", "-e", help="e.g. vswitch, tor-acl, qos")
    ] = None,
) -> None:
    """Print a device's rendered configuration."""
    params = {"enforcement_point": enforcement_point} if enforcement_point else None
    data = call("GET", f"/devices/{device_type}/{device_name}", params=params)
    out.print(
        f"# {data['device_name']} {data['enforcement_point']}/{data['flavor']} "
        f"generation {data['desired_generation']} (applied {data['applied_generation']})"
    )
    print(data["rendered"])


def verify(
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(help="reachable pairs to list")] = 50,
) -> None:
    """Who can reach whom, from compiled device state, checked against intent.

    The run is stored: the console's isolation page shows it until the next run.
    """
    data = call("POST", "/verify/runs", params={"limit": limit}, timeout=600)["report"]
    if as_json:
        show_one(data, as_json=True)
        return
    verdict = "[green]OK[/green]" if data["ok"] else "[red]VIOLATIONS[/red]"
    out.print(
        f"{verdict}: {data['endpoints']} endpoints in {data['classes']} classes, "
        f"{data['pairs_checked']} class pairs, {data['devices']} devices, "
        f"{data['seconds']} s"
    )
    for title, key in (("cross-tenant reachability", "cross_tenant"),):
        if data[key]:
            show(
                data[key],
                ["src_tenant", "src", "dst_tenant", "dst", "services", "path"],
                title=title,
            )
    for title, key in (
        ("leaks (compiled allows, intent does not)", "leaks"),
        ("blocks (intent allows, compiled does not)", "blocks"),
    ):
        if data[key]:
            show(data[key], ["src_ip", "dst_ip", "services", "allowed_by"], title=title)
    if data["reachable"]:
        show(
            data["reachable"],
            ["src_tenant", "src", "dst", "src_endpoints", "dst_endpoints", "services", "path"],
            title="reachable (within tenants)",
        )
    if not data["ok"]:
        raise typer.Exit(1)
