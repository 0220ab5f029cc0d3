"""CLI verbs over the API's resources: tenants, users, tokens, inventory, VMs, audit."""

from __future__ import annotations

from typing import Annotated

import typer

from fuyun.cli.client import base_url, call, list_all, out, save_credentials
from fuyun.cli.tables import show, show_one

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="at most this many rows")]

tenant_app = typer.Typer(help="Tenants (partners) and their quotas.", no_args_is_help=True)
user_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
host_app = typer.Typer(help="Physical hosts.", no_args_is_help=True)
vm_app = typer.Typer(help="Virtual machines: apply, adjust, return.", no_args_is_help=True)


def tenant_id_of(ref: str) -> str:
    found = call("GET", "/tenants", params={"name": ref})["items"]
    return found[0]["id"] if found else ref


# -- tenants ---------------------------------------------------------------------------


@tenant_app.command("list")
def tenant_list(as_json: JsonOpt = False, limit: LimitOpt = 1000) -> None:
    show(
        list_all("/tenants", limit=limit),
        ["id", "name", "display_name", "created_at"],
        as_json=as_json,
    )


@tenant_app.command("create")
def tenant_create(
    name: str,
    display_name: Annotated[str, typer.Option()] = "",
    vms: Annotated[int | None, typer.Option(help="quota: VMs")] = None,
    vcpus: Annotated[int | None, typer.Option(help="quota: vCPUs")] = None,
    ram_mb: Annotated[int | None, typer.Option(help="quota: RAM in MiB")] = None,
    ips: Annotated[int | None, typer.Option(help="quota: IP addresses")] = None,
    bandwidth_mbps: Annotated[int | None, typer.Option(help="quota: guaranteed Mbit/s")] = None,
    as_json: JsonOpt = False,
) -> None:
    quotas = {
        "vms": vms,
        "vcpus": vcpus,
        "ram_mb": ram_mb,
        "ips": ips,
        "bandwidth_mbps": bandwidth_mbps,
    }
    body = {
        "name": name,
        "display_name": display_name,
        "quotas": {k: v for k, v in quotas.items() if v is not None},
    }
    show_one(call("POST", "/tenants", json_body=body), as_json=as_json)


@tenant_app.command("quota")
def tenant_quota(tenant: str, as_json: JsonOpt = False) -> None:
    """Show a tenant's limits and use (by name or id)."""
    data = call("GET", f"/tenants/{tenant_id_of(tenant)}/quotas")
    show(data["usage"], ["resource", "used", "limit"], as_json=as_json, title=tenant)


@tenant_app.command("delete")
def tenant_delete(tenant: str) -> None:
    call("DELETE", f"/tenants/{tenant_id_of(tenant)}")
    out.print(f"deleted tenant {tenant}")


# -- users and tokens ---------------------------------------------------------------------


@user_app.command("list")
def user_list(as_json: JsonOpt = False, limit: LimitOpt = 1000) -> None:
    show(
        list_all("/users", limit=limit),
        ["id", "username", "role", "tenant_id", "disabled"],
        as_json=as_json,
    )


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[str, typer.Option(help="operator, tenant-admin, tenant-member, viewer")],
    tenant: Annotated[str | None, typer.Option(help="tenant name or id")] = None,
    password: Annotated[
        str | None, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    body = {
        "username": username,
        "role": role,
        "password": password or None,
        "tenant_id": tenant_id_of(tenant) if tenant else None,
    }
    show_one(call("POST", "/users", json_body=body), as_json=as_json)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option()] = "",
    expires_in_s: Annotated[int | None, typer.Option(help="lifetime in seconds")] = None,
    user_id: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Mint a token; the secret is printed once."""
    data = call(
        "POST",
        "/tokens",
        json_body={"name": name, "expires_in_s": expires_in_s, "user_id": user_id},
    )
    out.print(data["token"])


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    show(
        list_all("/tokens"),
        ["id", "prefix", "name", "user_id", "expires_at", "revoked_at"],
        as_json=as_json,
    )


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    call("DELETE", f"/tokens/{token_id}")
    out.print(f"revoked {token_id}")


def login(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    url: Annotated[str | None, typer.Option(help="API base URL")] = None,
) -> None:
    """Sign in and keep the token in ~/.config/fuyun/credentials."""
    import os

    if url:
        os.environ["FUYUN_URL"] = url
    data = call(
        "POST", "/auth/login", json_body={"username": username, "password": password}, auth=False
    )
    path = save_credentials(url or base_url(), data["token"])
    out.print(f"signed in as {username}; token saved in {path}")


# -- inventory ---------------------------------------------------------------------------

HOST_COLUMNS = [
    "name",
    "state",
    "hypervisor",
    "vm_count",
    "max_vms",
    "used_vcpus",
    "vcpus",
    "used_ram_mb",
    "ram_mb",
]


@host_app.command("list")
def host_list(
    site: Annotated[str | None, typer.Option(help="site name or id")] = None,
    module: Annotated[str | None, typer.Option(help="module name or id")] = None,
    tor: Annotated[str | None, typer.Option(help="ToR name or id")] = None,
    state: Annotated[str | None, typer.Option(help="active, maintenance, failed")] = None,
    name_prefix: Annotated[str | None, typer.Option("--prefix")] = None,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
) -> None:
    params = {
        "site": site,
        "module": module,
        "tor": tor,
        "state": state,
        "name_prefix": name_prefix,
    }
    show(list_all("/hosts", params, limit=limit), HOST_COLUMNS, as_json=as_json)


def _host_id(ref: str) -> str:
    found = call("GET", "/hosts", params={"name_prefix": ref, "limit": 2})["items"]
    exact = [h for h in found if h["name"] == ref]
    return exact[0]["id"] if exact else ref


@host_app.command("show")
def host_show(host: str, as_json: JsonOpt = False) -> None:
    show_one(call("GET", f"/hosts/{_host_id(host)}"), as_json=as_json)


@host_app.command("maintenance")
def host_maintenance(host: str, off: Annotated[bool, typer.Option("--off")] = False) -> None:
    """Stop new placements on a host (or resume them with --off); lists VMs to move."""
    state = "active" if off else "maintenance"
    data = call("POST", f"/hosts/{_host_id(host)}/state", json_body={"state": state})
    out.print(f"{data['host']['name']} is {state}; {len(data['vms_to_move'])} VMs to move")
    for vm_id in data["vms_to_move"]:
        out.print(f"  {vm_id}")


def make_list_command(path: str, columns: list[str], help_text: str) -> typer.Typer:
    sub = typer.Typer(help=help_text, no_args_is_help=True)

    @sub.command("list")
    def _list(
        name_prefix: Annotated[str | None, typer.Option("--prefix")] = None,
        limit: LimitOpt = 1000,
        as_json: JsonOpt = False,
    ) -> None:
        show(list_all(path, {"name_prefix": name_prefix}, limit=limit), columns, as_json=as_json)

    return sub


# -- VMs -----------------------------------------------------------------------------

VM_COLUMNS = ["id", "name", "state", "vcpus", "ram_mb", "image", "host_id"]


@vm_app.command("list")
def vm_list(
    state: Annotated[str | None, typer.Option()] = None,
    name_prefix: Annotated[str | None, typer.Option("--prefix")] = None,
    limit: LimitOpt = 1000,
    as_json: JsonOpt = False,
) -> None:
    show(
        list_all("/vms", {"state": state, "name_prefix": name_prefix}, limit=limit),
        VM_COLUMNS,
        as_json=as_json,
    )


@vm_app.command("create")
def vm_create(
    name: str,
    flavor: Annotated[str, typer.Option(help="flavor name or id")],
    count: Annotated[int, typer.Option()] = 1,
    image: Annotated[str, typer.Option()] = "debian-12",
    host: Annotated[str | None, typer.Option(help="operators: pin to a host")] = None,
    tenant: Annotated[str | None, typer.Option(help="operators: for this tenant")] = None,
    as_json: JsonOpt = False,
) -> None:
    body = {
        "name": name,
        "flavor": flavor,
        "count": count,
        "image": image,
        "host": host,
        "tenant_id": tenant_id_of(tenant) if tenant else None,
    }
    show(call("POST", "/vms", json_body=body)["items"], VM_COLUMNS, as_json=as_json)


@vm_app.command("show")
def vm_show(vm_id: str, as_json: JsonOpt = False) -> None:
    show_one(call("GET", f"/vms/{vm_id}"), as_json=as_json)


def _power(verb: str) -> None:
    @vm_app.command(verb, help=f"{verb.capitalize()} a VM.")
    def _cmd(vm_id: str) -> None:
        data = call("POST", f"/vms/{vm_id}/{verb}")
        out.print(f"{data['name']} is {data['state']}")


for _verb in ("start", "stop", "reboot"):
    _power(_verb)


@vm_app.command("delete")
def vm_delete(vm_id: str, yes: Annotated[bool, typer.Option("--yes", "-y")] = False) -> None:
    """Return a VM (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"delete VM {vm_id}?", abort=True)
    data = call("DELETE", f"/vms/{vm_id}")
    out.print(f"{data['name']} deleted")


def audit(
    tenant: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option()] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first."""
    params = {"tenant_id": tenant_id_of(tenant) if tenant else None, "action": action}
    show(
        list_all("/audit-events", params, limit=limit),
        ["at", "actor", "action", "object_type", "object_id", "result"],
        as_json=as_json,
    )
