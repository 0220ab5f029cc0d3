"""``fuyun plan``: what runs out first, where and when — and what to do about it.

``--fabric live`` (the default) plans on the running control plane's inventory and
load through ``POST /api/v1/plans``; a preset name or a fabric file is planned here,
in this process, without a server. Output is Rich tables, or the API's JSON with
``--json``. Bad input exits with 2, an unreachable server with 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fuyun.cli.client import call, fail, out
from fuyun.config import Settings
from fuyun.domain.errors import FuyunError
from fuyun.services import planning
from fuyun.services.principal import SYSTEM

plan_app = typer.Typer(
    help="Capacity planning and what-if on an in-memory copy of the fabric.",
    no_args_is_help=True,
)

FabricOpt = Annotated[
    str,
    typer.Option("--fabric", "-f", help="live, a preset (small, default, tencent-2010) or FILE"),
]
ScenarioOpt = Annotated[
    str, typer.Option("--scenario", "-s", help="steady, viral-app, 1p4v-to-1p10v")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a scenario field, e.g. --set steps=24 (repeatable)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the JSON answer")]
PLAN_TIMEOUT_S = 3600


def _source(
    fabric: str, *, switched: bool = False, add_site: str | None = None, link: str = "otv",
    add_module: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    src: dict[str, Any] = {"name": fabric}
    path = Path(fabric)
    if fabric not in ("live", "small", "default", "tencent-2010") and path.exists():
        try:
            src = {"name": path.name, "yaml": path.read_text(encoding="utf-8")}
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"{fabric}: {exc}") from None
    if switched:
        src["all_switched"] = True
    if add_site:
        src["add_site_like"], src["add_site_link"] = add_site, link
    if add_module:
        src["add_module_to"] = add_module
    return src


def _overrides(pairs: list[str] | None) -> dict[str, Any]:
    out_: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise fail(f"--set wants FIELD=VALUE, got '{pair}'")
        try:
            out_[key.strip()] = json.loads(raw)
        except ValueError:
            out_[key.strip()] = raw
    return out_


def _run(body: dict[str, Any]) -> dict[str, Any]:
    """Through the API for the live store, else here (no server needed)."""
    fabrics = [body["fabric"], body.get("compare_with") or {}]
    if any(f.get("name") == "live" and "yaml" not in f for f in fabrics if f):
        return call("POST", "/plans", json_body=body, timeout=PLAN_TIMEOUT_S)  # type: ignore[no-any-return]

    def src(f: dict[str, Any]) -> planning.FabricSource:
        return planning.FabricSource(**f)

    req = planning.PlanRequest(
        fabric=src(body["fabric"]),
        scenario=body["scenario"].get("name", "steady"),
        overrides={k: v for k, v in body["scenario"].items() if k != "name"},
        remedies=body.get("remedies", True),
        strategies=body.get("strategies", True),
        nplus1=body.get("nplus1", True),
        nplus1_limit=body.get("nplus1_limit", 200),
        compare_with=src(body["compare_with"]) if body.get("compare_with") else None,
    )
    try:
        return planning.run(None, Settings.from_env(), SYSTEM, req)
    except FuyunError as exc:
        where = f" [field: {exc.field}]" if exc.field else ""
        raise fail(f"{exc.message}{where}") from None
    except TypeError as exc:
        raise fail(f"bad scenario field: {exc}") from None


@plan_app.command("run")
def run(
    fabric: FabricOpt = "live",
    scenario: ScenarioOpt = "steady",
    set_: SetOpt = None,
    remedies: Annotated[bool, typer.Option(help="rank the remedies")] = True,
    nplus1: Annotated[bool, typer.Option("--nplus1/--no-nplus1", help="N+1 checks")] = True,
    limit: Annotated[int, typer.Option(help="N+1 domains checked per kind")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a growth scenario: what runs out first, where, when, and the remedies."""
    body = {
        "fabric": _source(fabric),
        "scenario": {"name": scenario, **_overrides(set_)},
        "remedies": remedies,
        "nplus1": nplus1,
        "nplus1_limit": limit,
    }
    data = _run(body)
    if as_json:
        out.print_json(json.dumps(data))
        return
    render(data)


@plan_app.command("compare")
def compare(
    fabric: FabricOpt = "live",
    scenario: ScenarioOpt = "steady",
    set_: SetOpt = None,
    with_: Annotated[
        str | None, typer.Option("--with", help="the other fabric (default: the same one)")
    ] = None,
    switched: Annotated[
        bool, typer.Option(help="the other fabric rebuilds routed-clos modules as switched-clos")
    ] = False,
    add_site: Annotated[
        str | None, typer.Option(help="the other fabric adds a site built like this one")
    ] = None,
    link: Annotated[str, typer.Option(help="…joined by otv, vpls, direct or none")] = "otv",
    add_module: Annotated[
        str | None, typer.Option(help="the other fabric adds a module here")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One scenario on two fabrics, side by side."""
    body = {
        "fabric": _source(fabric),
        "compare_with": _source(
            with_ or fabric, switched=switched, add_site=add_site, link=link, add_module=add_module
        ),
        "scenario": {"name": scenario, **_overrides(set_)},
        "nplus1_limit": 20,
    }
    data = _run(body)
    if as_json:
        out.print_json(json.dumps(data))
        return
    render_compare(data)


@plan_app.command("presets")
def presets(as_json: JsonOpt = False) -> None:
    """The scenario presets and the fabrics a plan can start from."""
    data = planning.presets()
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(title="scenarios", header_style="bold")
    for col in ("name", "steps", "tenants", "new/step", "growth/step", "description"):
        table.add_column(col)
    for name, s in data["scenarios"].items():
        table.add_row(
            name, str(s["steps"]), str(s["tenants"]), str(s["new_tenants_per_step"]),
            f"{s['growth_per_step']:.0%}", s["description"],
        )  # fmt: skip
    out.print(table)
    out.print("fabrics: " + ", ".join(data["fabrics"]) + ", or a fabric FILE")


# -- rendering ---------------------------------------------------------------------------


def _t(title: str, *cols: str) -> Table:
    table = Table(title=title, header_style="bold", title_justify="left")
    for c in cols:
        table.add_column(c, overflow="fold")
    return table


def _pct(u: dict[str, Any]) -> str:
    return f"{u['pct']:.1f}%"


def render(d: dict[str, Any]) -> None:
    first = "never" if d["first_unplaced_step"] is None else f"step {d['first_unplaced_step']}"
    out.print(
        f"[bold]{d['fabric']}[/bold] under [bold]{d['scenario']}[/bold]: "
        f"{d['demanded']:,} VMs asked, {d['placed']:,} placed, {d['unplaced']:,} refused "
        f"(first refusal: {first}); {d['spills']:,} spills to another network",
        highlight=False,
    )
    runs_out = _t("first to run out", "scope", "where", "resource", "step", "why")
    for scope, key in (("site", "first_by_site"), ("module", "first_by_module")):
        for name, e in d[key].items():
            runs_out.add_row(scope, name, e["resource"], str(e["step"]), e["detail"][:160])
    if d["first_by_site"] or d["first_by_module"]:
        out.print(runs_out)
    tl = _t(
        "utilization over time", "step", "VMs", "refused", "density", "vCPU", "RAM", "NIC",
        "IP used", "site space", "VLANs", "ToR MAC", "agg MAC", "ARP",
    )  # fmt: skip
    for s in d["timeline"]:
        tl.add_row(
            str(s["step"]), f"{s['vms']:,}", f"{s['unplaced']:,}", _pct(s["density"]),
            _pct(s["vcpu"]), _pct(s["ram"]), _pct(s["nic"]), _pct(s["ip"]), _pct(s["space"]),
            _pct(s["vlans"]), f"{s['tor_mac_max']:.1f}%", f"{s['agg_mac_max']:.1f}%",
            f"{s['arp_max']:.1f}%",
        )  # fmt: skip
    out.print(tl)
    if d["strategies"]:
        st = _t(
            "address cost of each growth strategy", "growth", "networks", "subnets",
            "growth subnets", "growth VLANs", "allocated", "reserved", "boundary loss", "free",
        )  # fmt: skip
        for w in d["strategies"]:
            st.add_row(
                w["growth"], *(f"{w[k]:,}" for k in (
                    "networks", "subnets", "growth_subnets", "growth_vlans", "allocated",
                    "reserved", "boundary_loss", "free",
                ))
            )  # fmt: skip
        out.print(st)
    sw = _t("busiest switches", "switch", "module", "role", "VLANs", "MAC", "ARP")
    for s in d["switches"][:10]:
        sw.add_row(
            s["name"], s["module"], s["role"],
            f"{s['vlans']['used']:,}/{s['vlans']['capacity']:,}",
            f"{s['mac']['used']:,}/{s['mac']['capacity']:,}",
            f"{s['arp']['used']:,}/{s['arp']['capacity']:,}",
        )  # fmt: skip
    out.print(sw)
    spans = d["spans"]
    out.print(
        f"VLAN spans: {spans['segments']:,} segments of {spans['networks']:,} networks, "
        f"at most {spans['max_tors']} ToRs, {spans['mean_tors']} on average",
        highlight=False,
    )
    if d["remedies"]:
        rt = _t(
            "remedies, best first", "#", "remedy", "what", "pushes exhaustion", "first refusal",
            "refused", "extra VMs placed", "hosts added",
        )  # fmt: skip
        for r in d["remedies"]:
            when = (
                "never" if r["first_unplaced_step"] is None else f"step {r['first_unplaced_step']}"
            )
            rt.add_row(
                str(r["rank"]), r["remedy"], r["what"], f"{r['pushed_steps']:+d} steps", when,
                f"{r['unplaced']:,}", f"{r['extra_vms_placed']:+,}", str(r["hosts_added"]),
            )  # fmt: skip
        out.print(rt)
    if d.get("nplus1"):
        _render_nplus1(d["nplus1"])


def _render_nplus1(n: dict[str, Any]) -> None:
    checked = ", ".join(f"{n['checked'][k]} of {n['total'][k]} {k}s" for k in n["checked"])
    verdict = (
        "[green]every VM can be re-placed[/green]" if n["ok"] else "[red]VMs left homeless[/red]"
    )
    out.print(f"N+1 ({checked}, most loaded first): {verdict}")
    if n["failing"]:
        t = _t("N+1 failures", "fails", "VMs", "kept IP", "new IP", "homeless", "why")
        for f in n["failing"][:15]:
            why = "; ".join(f"{k} x{v}" for k, v in f["reasons"].items())
            t.add_row(
                f"{f['kind']} {f['name']}", str(f["vms"]), str(f["kept_ip"]), str(f["new_ip"]),
                str(f["failed"]), why,
            )  # fmt: skip
        out.print(t)


def render_compare(d: dict[str, Any]) -> None:
    a, b = d["a"], d["b"]
    names = d.get("fabrics") or [a["fabric"], b["fabric"]]
    t = _t(f"what-if under {a['scenario']}", "", names[0], names[1], "change")

    def row(label: str, x: Any, y: Any) -> None:
        delta = f"{y - x:+,}" if isinstance(x, int) and isinstance(y, int) else ""
        t.add_row(
            label,
            f"{x:,}" if isinstance(x, int) else str(x),
            f"{y:,}" if isinstance(y, int) else str(y),
            delta,
        )

    def first(r: dict[str, Any]) -> str:
        return "never" if r["first_unplaced_step"] is None else f"step {r['first_unplaced_step']}"

    row("VMs placed", a["placed"], b["placed"])
    row("VMs refused", a["unplaced"], b["unplaced"])
    row("first refusal", first(a), first(b))
    row("spills to another network", a["spills"], b["spills"])
    row("widest VLAN span (ToRs)", a["spans"]["max_tors"], b["spans"]["max_tors"])
    row(
        "boundary loss (addresses)",
        a["addresses"]["boundary_loss"],
        b["addresses"]["boundary_loss"],
    )
    row(
        "peak ToR MAC",
        f"{a['timeline'][-1]['tor_mac_max']}%",
        f"{b['timeline'][-1]['tor_mac_max']}%",
    )
    if a.get("nplus1") and b.get("nplus1"):
        row("N+1 failing domains", len(a["nplus1"]["failing"]), len(b["nplus1"]["failing"]))
    out.print(t)
