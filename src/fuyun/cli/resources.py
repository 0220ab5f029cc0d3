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
    network: Annotated[list[str] | None, typer.Option(help="one NIC per network (repeat)")] = None,
    group: Annotated[str | None, typer.Option(help="server group")] = None,
    security_group: Annotated[
        list[str] | None, typer.Option("--security-group", help="on every NIC (repeat)")
    ] = None,
    strategy: Annotated[str | None, typer.Option(help="pack or spread")] = None,
    image: Annotated[str, typer.Option()] = "debian-12",
    host: Annotated[str | None, typer.Option(help="operators: pin to a host")] = None,
    tenant: Annotated[str | None, typer.Option(help="operators: for this tenant")] = None,
    qos_policy: Annotated[str | None, typer.Option(help="port QoS policy on every NIC")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply for VMs: placed, addressed and booted in one workflow, all or none."""
    body = {
        "name": name,
        "flavor": flavor,
        "count": count,
        "image": image,
        "host": host,
        "networks": network or [],
        "security_groups": security_group or [],
        "group": group,
        "strategy": strategy,
        "tenant_id": tenant_id_of(tenant) if tenant else None,
        "qos_policy": qos_policy,
    }
    data = call("POST", "/vms", json_body={k: v for k, v in body.items() if v is not None})
    show(data["items"], VM_COLUMNS, as_json=as_json)


@vm_app.command("resize")
def vm_resize(vm_id: str, flavor: Annotated[str, typer.Option()]) -> None:
    """Give a VM another flavor on its host."""
    data = call("POST", f"/vms/{vm_id}/resize", json_body={"flavor": flavor})
    out.print(f"{data['name']} now has {data['vcpus']} vCPU, {data['ram_mb']} MiB")


@vm_app.command("attach")
def vm_attach(
    vm_id: str,
    network: Annotated[str, typer.Option()],
    ip: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add a NIC on a network."""
    call("POST", f"/vms/{vm_id}/nics", json_body={"network": network, "ip": ip})
    out.print(f"attached {vm_id} to {network}")


@vm_app.command("detach")
def vm_detach(vm_id: str, port_id: str) -> None:
    call("DELETE", f"/vms/{vm_id}/nics/{port_id}")
    out.print(f"detached port {port_id}")


def explain(
    vm_id: str,
    host: Annotated[str | None, typer.Option(help="why (not) this host")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Why a VM was placed where it is, and why not on HOST."""
    data = call("GET", f"/vms/{vm_id}/explain", params={"host": host})
    if as_json:
        show_one(data, as_json=True)
        return
    placement = data["placement"]
    out.print(
        f"runs on [bold]{data['host']}[/bold]; {placement.get('considered', '?')} hosts "
        f"looked at ({placement.get('strategy', '?')})"
    )
    removed = placement.get("removed") or {}
    if removed:
        show(
            [{"filter": k, "hosts removed": v} for k, v in removed.items()],
            ["filter", "hosts removed"],
            title="filters",
        )
    if placement.get("top"):
        show(
            [{"host": h, "score": sc} for h, sc in placement["top"]],
            ["host", "score"],
            title="top scores",
        )
    if host:
        show(data["verdicts"], ["filter", "passes", "reason"], title=f"why not {host}")


group_app = typer.Typer(help="Server groups: affinity and anti-affinity.", no_args_is_help=True)
workflow_app = typer.Typer(help="Workflows of long operations.", no_args_is_help=True)


@group_app.command("list")
def group_list(as_json: JsonOpt = False) -> None:
    show(call("GET", "/server-groups"), ["id", "name", "policy", "level"], as_json=as_json)


@group_app.command("create")
def group_create(
    name: str,
    policy: Annotated[str, typer.Option(help="affinity|anti-affinity")],
    level: Annotated[str, typer.Option(help="host|tor|module|site")] = "host",
    tenant: Annotated[str | None, typer.Option()] = None,
) -> None:
    data = call(
        "POST",
        "/server-groups",
        json_body={
            "name": name,
            "policy": policy,
            "level": level,
            "tenant_id": tenant_id_of(tenant) if tenant else None,
        },
    )
    out.print(f"group {data['name']} ({data['policy']} per {data['level']}): {data['id']}")


@workflow_app.command("list")
def workflow_list(
    state: Annotated[str | None, typer.Option()] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    show(
        list_all("/workflows", {"state": state}, limit=limit),
        ["id", "kind", "state", "actor", "subject", "created_at", "error"],
        as_json=as_json,
    )


@workflow_app.command("show")
def workflow_show(workflow_id: str, as_json: JsonOpt = False) -> None:
    data = call("GET", f"/workflows/{workflow_id}")
    if as_json:
        show_one(data, as_json=True)
        return
    out.print(
        f"{data['kind']} [bold]{data['state']}[/bold] by {data['actor']}"
        + (f": {data['error']}" if data.get("error") else "")
    )
    show(data["steps"], ["index", "name", "state", "started_at", "finished_at", "error"])


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
