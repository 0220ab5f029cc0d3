"""CLI verbs for networks, ports, VLAN pools and the utilization report."""

from __future__ import annotations

from typing import Annotated

import typer

from fuyun.cli.client import call, list_all, out
from fuyun.cli.resources import JsonOpt, LimitOpt, tenant_id_of
from fuyun.cli.tables import show, show_one

network_app = typer.Typer(help="Tenant networks and their subnets.", no_args_is_help=True)
port_app = typer.Typer(help="Ports: a MAC and addresses on a network.", no_args_is_help=True)


def network_id_of(ref: str) -> str:
    found = list_all("/networks", {"name_prefix": ref})
    exact = [n for n in found if n["name"] == ref]
    if len(exact) > 1:
        raise typer.BadParameter(f"several networks are named {ref}; use the id")
    return exact[0]["id"] if exact else ref


@network_app.command("list")
def network_list(as_json: JsonOpt = False, limit: LimitOpt = 1000) -> None:
    show(
        list_all("/networks", limit=limit),
        ["id", "name", "growth", "tenant_id", "generation"],
        as_json=as_json,
    )


@network_app.command("create")
def network_create(
    name: str,
    cidr: Annotated[str | None, typer.Option(help="primary subnet, e.g. 10.1.0.0/24")] = None,
    prefix_len: Annotated[int | None, typer.Option(help="or carve a /N from the pools")] = None,
    growth: Annotated[str, typer.Option(help="secondary, new-vlan or refuse")] = "secondary",
    growth_prefix_len: Annotated[int | None, typer.Option()] = None,
    reserve_first: Annotated[int, typer.Option(help="addresses kept after the gateway")] = 0,
    site: Annotated[str | None, typer.Option()] = None,
    module: Annotated[str | None, typer.Option(help="operators")] = None,
    vlan: Annotated[int | None, typer.Option()] = None,
    tenant: Annotated[str | None, typer.Option(help="operators: for this tenant")] = None,
    dhcp: Annotated[bool, typer.Option(help="DHCP and DNS for its ports")] = True,
    as_json: JsonOpt = False,
) -> None:
    body = {
        "dhcp": dhcp,
        "name": name,
        "cidr": cidr,
        "prefix_len": prefix_len,
        "growth": growth,
        "growth_prefix_len": growth_prefix_len,
        "reserve_first": reserve_first,
        "site": site,
        "module": module,
        "vlan": vlan,
        "tenant_id": tenant_id_of(tenant) if tenant else None,
    }
    data = call("POST", "/networks", json_body={k: v for k, v in body.items() if v is not None})
    _show_network(data, as_json)


def _show_network(data: dict, as_json: bool) -> None:
    if as_json:
        show_one(data, as_json=True)
        return
    out.print(
        f"[bold]{data['name']}[/bold] ({data['id']}) VLANs {data['vlans']} growth {data['growth']}"
    )
    show(data["subnets"], ["cidr", "gateway", "vlan", "primary", "capacity"])
    if data.get("span"):
        out.print("span: " + ", ".join(data["span"]))


@network_app.command("show")
def network_show(network: str, as_json: JsonOpt = False) -> None:
    _show_network(call("GET", f"/networks/{network_id_of(network)}"), as_json)


@network_app.command("dhcp")
def network_dhcp(
    network: str,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="turn DHCP and DNS on or off")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The network's DHCP reservations and DNS names (or switch them on or off)."""
    network_id = network_id_of(network)
    if enable is not None:
        call("PATCH", f"/networks/{network_id}", json_body={"dhcp": enable})
    data = call("GET", f"/networks/{network_id}/dhcp")
    if as_json:
        show_one(data, as_json=True)
        return
    state = "on" if data["enabled"] else "off (static addresses only)"
    out.print(
        f"[bold]{data['network']}[/bold] DHCP {state}, zone {data['zone']}, "
        f"MTU {data['mtu']}, DNS {data['dns_server'] or '-'} (generation {data['generation']})"
    )
    show(data["reservations"], ["hostname", "address", "mac"])


@network_app.command("delete")
def network_delete(network: str) -> None:
    call("DELETE", f"/networks/{network_id_of(network)}")
    out.print(f"deleted network {network}")


@network_app.command("add-subnet")
def network_add_subnet(
    network: str,
    cidr: Annotated[str | None, typer.Option()] = None,
    prefix_len: Annotated[int | None, typer.Option()] = None,
    new_vlan: Annotated[bool, typer.Option("--new-vlan")] = False,
) -> None:
    data = call(
        "POST",
        f"/networks/{network_id_of(network)}/subnets",
        json_body={"cidr": cidr, "prefix_len": prefix_len, "new_vlan": new_vlan},
    )
    out.print(f"added {data['cidr']} on VLAN {data['vlan']}")


@network_app.command("utilization")
def utilization(
    network: Annotated[str | None, typer.Option(help="one network")] = None,
    module: Annotated[str | None, typer.Option(help="operators: one module")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Allocated, free, quarantined and reserved addresses, and what growth cost."""
    params = {"network_id": network_id_of(network) if network else None, "module": module}
    data = call("GET", "/utilization", params=params)
    if as_json:
        show_one(data, as_json=True)
        return
    rows = [
        {
            "network": n["name"],
            "growth": n["growth"],
            "vlans": ",".join(map(str, n["vlans"])),
            "subnets": len(n["subnets"]),
            "allocated": n["allocated"],
            "free": n["free"],
            "quarantined": n["quarantined"],
            "reserved": n["reserved"],
            "boundary_loss": n["boundary_loss"],
        }
        for n in data["networks"]
    ]
    show(
        rows,
        [
            "network",
            "growth",
            "vlans",
            "subnets",
            "allocated",
            "free",
            "quarantined",
            "reserved",
            "boundary_loss",
        ],
        title="networks",
    )
    if data["modules"]:
        show(
            data["modules"],
            [
                "name",
                "networks",
                "vlans_used",
                "vlan_pool_size",
                "allocated",
                "free",
                "quarantined",
                "reserved",
                "boundary_loss",
            ],
            title="modules",
        )


@port_app.command("list")
def port_list(
    network: Annotated[str | None, typer.Option()] = None,
    limit: LimitOpt = 1000,
    as_json: JsonOpt = False,
) -> None:
    params = {"network_id": network_id_of(network) if network else None}
    show(
        list_all("/ports", params, limit=limit),
        ["id", "mac", "ips", "vlan", "vm_id"],
        as_json=as_json,
    )


@port_app.command("create")
def port_create(
    network: str,
    ip: Annotated[str | None, typer.Option(help="a specific address")] = None,
    host: Annotated[str | None, typer.Option(help="operators: bind to this host")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would change")] = False,
    as_json: JsonOpt = False,
) -> None:
    body = {"network_id": network_id_of(network), "ip": ip, "host": host}
    data = call(
        "POST",
        "/ports",
        json_body={k: v for k, v in body.items() if v is not None},
        params={"dry_run": str(dry_run).lower()},
    )
    if as_json:
        show_one(data, as_json=True)
        return
    prefix = "[yellow]dry run:[/yellow] would create" if dry_run else "created"
    out.print(
        f"{prefix} port {data['mac']} {', '.join(data['ips'])} on VLAN {data['vlan']}"
        + (f" ({data['grew']})" if data.get("grew") else "")
    )
    if data["l2"]:
        show(
            data["l2"],
            ["switch", "table", "used", "after", "capacity", "fits"],
            title="switch tables",
        )


@port_app.command("delete")
def port_delete(port_id: str) -> None:
    call("DELETE", f"/ports/{port_id}")
    out.print(f"deleted port {port_id}")
