"""The operator console's capacity plan: a form, then charts and tables of the answer.

A plan reads the whole fabric and takes seconds, so the page (``GET``) shows the
latest stored run — its inputs, age and whether the live inventory changed since —
and never plans. The form posts: the run happens in that request's worker thread
(never on the event loop), is stored, and the browser is sent back to the page.
Query parameters only fill the form in, so a plan's inputs stay bookmarkable. The
numbers come from the same service as ``POST /api/v1/plans``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from fuyun.domain.errors import FuyunError, InvalidInput
from fuyun.fabric.generator import PRESETS as FABRIC_PRESETS
from fuyun.portal import plan_charts as charts
from fuyun.portal.forms import FormState, Posted, optional_int
from fuyun.portal.rendering import PortalRoute, redirect, render
from fuyun.portal.session import Reader, Writer, context
from fuyun.services import planning, reports

router = APIRouter(route_class=PortalRoute)
FIELDS = ("fabric", "scenario", "steps", "seed", "growth", "whatif", "nplus1")
WHATIF = (
    ("", "no comparison"),
    ("switched", "routed-clos modules rebuilt as switched-clos (TRILL)"),
    ("site", "a second site like the first, joined by OTV"),
    ("module", "one more module in the first site"),
)
GROWTH = (("", "as the scenario says"), ("secondary", "secondary"), ("new-vlan", "new-vlan"),
          ("refuse", "refuse"))  # fmt: skip


def _options() -> dict[str, Any]:
    return {
        "fabrics": [("live", "live inventory (read-only)")]
        + [(n, f"preset {n}") for n in FABRIC_PRESETS],
        "scenarios": [
            (n, f"{n}: {s['description']}") for n, s in planning.presets()["scenarios"].items()
        ],
        "growths": GROWTH,
        "whatifs": WHATIF,
    }


def _request(values: dict[str, str]) -> planning.PlanRequest:
    overrides: dict[str, Any] = {}
    steps = optional_int(values.get("steps", ""), "steps", low=1, high=48)
    seed = optional_int(values.get("seed", ""), "seed", low=0, high=2**31 - 1)
    if steps is not None:
        overrides["steps"] = steps
    if seed is not None:
        overrides["seed"] = seed
    if values.get("growth"):
        overrides["growth"] = values["growth"]
    fabric = planning.FabricSource(name=values.get("fabric") or "live")
    other = None
    whatif = values.get("whatif", "")
    if whatif not in {w for w, _ in WHATIF}:
        raise InvalidInput("choose one of the listed comparisons", field="whatif")
    if whatif:
        other = planning.FabricSource(
            name=fabric.name,
            all_switched=whatif == "switched",
            add_site_like="*" if whatif == "site" else None,
            add_module_to="*" if whatif == "module" else None,
        )
    return planning.PlanRequest(
        fabric=fabric,
        scenario=values.get("scenario") or "steady",
        overrides=overrides,
        remedies=other is None,
        strategies=other is None,
        nplus1=values.get("nplus1") == "on",
        nplus1_limit=30,
        compare_with=other,
    )


@router.get("/ops/plan")
def plan_page(request: Request, visitor: Reader) -> Response:
    visitor.principal.require_operator()
    run = planning.latest(context(request).db, visitor.principal)
    values = {k: v for k, v in request.query_params.items() if k in FIELDS}
    if not values and run is not None:
        values = dict(run.parameters.get("form") or {})
    form = FormState(FIELDS, values=values or {"fabric": "live", "scenario": "steady"})
    return _page(request, form, run)


class PlanForm(Posted):
    fabric: str = ""
    scenario: str = ""
    steps: str = ""
    seed: str = ""
    growth: str = ""
    whatif: str = ""
    nplus1: str = ""


@router.post("/ops/plan")
def plan_run(request: Request, visitor: Writer, posted: Annotated[PlanForm, Form()]) -> Response:
    """Plan now (a plain ``def``: in a worker thread), store the run, show it."""
    visitor.principal.require_operator()
    values = {k: v for k, v in posted.model_dump().items() if v}
    form = FormState(FIELDS, values=values)
    ctx = context(request)
    try:
        planning.run_and_store(
            ctx.db, ctx.settings, visitor.principal, _request(values), form=values
        )
    except FuyunError as exc:
        form.fail(exc)
        return _page(request, form, planning.latest(ctx.db, visitor.principal))
    return redirect("/ops/plan", "Plan finished and stored.")


def _page(request: Request, form: FormState, run: reports.Run | None) -> Response:
    result = run.document if run is not None else None
    views = _views(result) if result is not None else {}
    return render(
        request, "ops/plan.html", form=form, run=run, result=result, status=form.status,
        age_text=reports.age_text, **views, **_options(),
    )  # fmt: skip


def _timeline_charts(r: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    tl = r["timeline"]
    steps = [s["step"] for s in tl]

    def pct(key: str) -> list[float]:
        return [s[key]["pct"] for s in tl]

    compute = charts.line_chart(
        f"{prefix}Compute utilization by step",
        steps,
        [("VM density", pct("density")), ("vCPU", pct("vcpu")), ("RAM", pct("ram")),
         ("NIC guarantees", pct("nic"))],
    )  # fmt: skip
    network = charts.line_chart(
        f"{prefix}Network utilization by step",
        steps,
        [("site IP space", pct("space")), ("VLAN pools", pct("vlans")),
         ("fullest ToR MAC", [s["tor_mac_max"] for s in tl]),
         ("fullest aggregation MAC", [s["agg_mac_max"] for s in tl]),
         ("fullest ARP", [s["arp_max"] for s in tl])],
    )  # fmt: skip
    return {"compute": compute, "network": network}


def _views(result: dict[str, Any]) -> dict[str, Any]:
    if "a" in result:
        return {
            "chart_a": _timeline_charts(result["a"], "A: "),
            "chart_b": _timeline_charts(result["b"], "B: "),
        }
    views: dict[str, Any] = {"chart": _timeline_charts(result)}
    if result["remedies"]:
        views["remedy_chart"] = charts.bar_chart(
            "VMs placed beyond the current fabric, per remedy",
            [(r["remedy"], float(r["extra_vms_placed"])) for r in result["remedies"]],
            unit=" VMs",
        )
    return views
