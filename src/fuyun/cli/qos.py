"""CLI verbs for QoS policies and where they apply: ports, VMs, the tenant aggregate.

Rates are written as people say them — ``300M``, ``1G``, ``500`` (Mbit/s) — and
bursts as ``64k``, ``1M`` or bytes; a rate that is not a whole Mbit/s is refused
(exit 2) before anything is sent.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from fuyun.cli.client import call, out
from fuyun.cli.resources import JsonOpt, tenant_id_of
from fuyun.cli.tables import show, show_one

qos_app = typer.Typer(help="QoS policies: guarantees, ceilings, bursts.", no_args_is_help=True)

COLUMNS = ["id", "name", "scope", "guarantee_mbps", "ceiling_mbps", "burst_bytes", "tenant_id"]
_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:bit/s|bps)?$")
_SCALE = {"": 1.0, "k": 1e-3, "m": 1.0, "g": 1e3}
_BYTES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def mbps(text: str, option: str) -> int:
    """'300M' / '1G' / '500' (Mbit/s) -> Mbit/s, or BadParameter (exit 2)."""
    m = _RATE.match(text.strip())
    value = float(m[1]) * _SCALE[m[2].lower()] if m else -1.0
    if value < 0 or value != int(value):
        raise typer.BadParameter(f"'{text}' is not a whole number of Mbit/s", param_hint=option)
    return int(value)


def nbytes(text: str, option: str) -> int:
    m = re.match(r"^(\d+)\s*([kKmMgG]?)[bB]?$", text.strip())
    if not m:
        raise typer.BadParameter(f"'{text}' is not a size like 64k or 1M", param_hint=option)
    return int(m[1]) * _BYTES[m[2].lower()]


def policy_id_of(ref: str) -> str:
    found = [p for p in call("GET", "/qos-policies") if p["name"] == ref]
    if len(found) > 1:
        raise typer.BadParameter(f"several QoS policies are named {ref}; use the id")
    return found[0]["id"] if found else ref


@qos_app.command("list")
def qos_list(as_json: JsonOpt = False) -> None:
    show(call("GET", "/qos-policies"), COLUMNS, as_json=as_json)


@qos_app.command("create")
def qos_create(
    name: str,
    ceiling: Annotated[str, typer.Option(help="max rate, e.g. 1G")],
    guarantee: Annotated[str, typer.Option(help="guaranteed minimum, e.g. 100M")] = "0",
    burst: Annotated[str, typer.Option(help="burst size, e.g. 64k")] = "0",
    scope: Annotated[str, typer.Option(help="port or tenant (aggregate)")] = "port",
    description: Annotated[str, typer.Option()] = "",
    tenant: Annotated[str | None, typer.Option(help="operators: for this tenant")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Define a policy; attach a port policy with `qos attach`, a tenant one with `qos tenant`."""
    body = {
        "name": name,
        "scope": scope,
        "guarantee_mbps": mbps(guarantee, "--guarantee"),
        "ceiling_mbps": mbps(ceiling, "--ceiling"),
        "burst_bytes": nbytes(burst, "--burst"),
        "description": description,
        "tenant_id": tenant_id_of(tenant) if tenant else None,
    }
    show_one(call("POST", "/qos-policies", json_body=body), as_json=as_json)


@qos_app.command("show")
def qos_show(policy: str, as_json: JsonOpt = False) -> None:
    show_one(call("GET", f"/qos-policies/{policy_id_of(policy)}"), as_json=as_json)


@qos_app.command("update")
def qos_update(
    policy: str,
    guarantee: Annotated[str | None, typer.Option()] = None,
    ceiling: Annotated[str | None, typer.Option()] = None,
    burst: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """New rates for every port using the policy — admitted on every host, or refused."""
    body: dict[str, object] = {}
    if guarantee is not None:
        body["guarantee_mbps"] = mbps(guarantee, "--guarantee")
    if ceiling is not None:
        body["ceiling_mbps"] = mbps(ceiling, "--ceiling")
    if burst is not None:
        body["burst_bytes"] = nbytes(burst, "--burst")
    data = call("PATCH", f"/qos-policies/{policy_id_of(policy)}", json_body=body)
    show_one(data, as_json=as_json)


@qos_app.command("delete")
def qos_delete(policy: str) -> None:
    call("DELETE", f"/qos-policies/{policy_id_of(policy)}")
    out.print(f"deleted {policy}")


@qos_app.command("attach")
def qos_attach(
    policy: Annotated[str, typer.Argument(help="policy name or id; 'none' detaches")],
    vm: Annotated[str | None, typer.Option(help="every NIC of this VM (id)")] = None,
    port: Annotated[str | None, typer.Option(help="this port (id)")] = None,
) -> None:
    """Attach a port policy to a VM's NICs or one port; refused naming the full uplink."""
    if (vm is None) == (port is None):
        raise typer.BadParameter("give exactly one of --vm and --port", param_hint="--vm")
    path = f"/vms/{vm}/qos-policy" if vm else f"/ports/{port}/qos-policy"
    data = call("PUT", path, json_body={"qos_policy": None if policy == "none" else policy})
    name = data["qos_policy"]["name"] if data["qos_policy"] else "no policy"
    out.print(f"{len(data['ports'])} port(s) now have {name}")


@qos_app.command("tenant")
def qos_tenant(
    tenant: str,
    policy: Annotated[str | None, typer.Argument(help="tenant policy; 'none' removes it")] = None,
) -> None:
    """Show, set or remove a tenant's aggregate policy."""
    path = f"/tenants/{tenant_id_of(tenant)}/qos-policy"
    if policy is None:
        data = call("GET", path)
    else:
        data = call("PUT", path, json_body={"qos_policy": None if policy == "none" else policy})
    p = data["qos_policy"]
    if p is None:
        out.print(f"{tenant}: no aggregate")
    else:
        out.print(
            f"{tenant}: {p['name']} guarantee {p['guarantee_mbps']} Mbit/s,"
            f" ceiling {p['ceiling_mbps']} Mbit/s per host"
        )
