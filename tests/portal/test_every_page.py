"""Every page the portal serves, at 1280 x 800 and at phone width, in a real browser.

The page list is the portal's own (:func:`fuyun.portal.page_paths`): a page added later
without a URL here fails :func:`test_every_page_has_a_url_here`, so no page goes
without its screenshot and its checks. Each page must answer 200, have landmarks and
one ``h1``, a name for every control, a skip link first in the tab order, and no
sideways scrolling on a phone. Screenshots: ``test-artifacts/portal/page-*.png`` and
``phone-page-*.png``.

The world is this module's own server, so nothing here depends on what other tests
did: acme with security groups and rules, QoS policies, a server group, VMs, a live
migration and an evacuated host, an agent credential, and traffic samples.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fuyun.config import Settings
from fuyun.domain.enums import HostState
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.portal import page_paths
from fuyun.services import agents, groups, inventory, networks, policy, qos, vms
from fuyun.services.migration import batch, service
from fuyun.services.migration.plan import Target
from fuyun.services.principal import SYSTEM
from fuyun.services.runtime import Runtime
from fuyun.store.engine import Database
from fuyun.store.models import Host, MigrationBatch, Tenant, Workflow
from fuyun.store.types import utcnow
from fuyun.telemetry.bindings import load_bindings
from fuyun.telemetry.dbstore import DatabaseFlowStore
from fuyun.telemetry.rollup import TrafficRow, bucket_of, to_time
from tests.portal.conftest import DESKTOP, PHONE, Account, expect, seed, shot, sign_in
from tests.portal.test_operator import UNLABELLED
from tests.support.live import api_servers

ACME = Account("acme-admin", "acme-password")
# The outermost elements that reach past the right edge (what makes a page scroll sideways).
WIDEST = """() => Array.from(document.querySelectorAll('main *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
               && e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
  .map(e => e.outerHTML.slice(0, 100))"""


@dataclass(frozen=True)
class World:
    url: str
    operator: Account
    ids: dict[str, str]


def _populate(url: str) -> dict[str, str]:
    db = Database(url)
    rt = Runtime(db, Settings(database_url=url), FakeComputeDriver())
    with db.read_session() as s:
        acme = s.scalars(select(Tenant.id).where(Tenant.name == "acme")).one()
    web = policy.create_group(db, SYSTEM, name="web", tenant_id=acme)
    for rule in (
        policy.RuleSpec("ingress", 4, "tcp", 80, 443, "0.0.0.0/0"),
        policy.RuleSpec("ingress", 4, "tcp", 22, 22, "203.0.113.0/24"),
        policy.RuleSpec("ingress", 4, "tcp", 5432, 5432, remote_group="web"),
    ):
        policy.add_rule(db, SYSTEM, web.id, rule)
    qos.create_policy(db, SYSTEM, qos.PolicySpec("silver", "port", 50, 500), tenant_id=acme)
    groups.create_group(db, SYSTEM, name="ha", policy="anti-affinity", level="host", tenant_id=acme)
    net = networks.create_network(
        networks.Networking(db=db, settings=rt.settings),
        SYSTEM,
        networks.NetworkRequest(name="pages", cidr="10.91.0.0/24", tenant_id=acme),
    )
    made = vms.create_vms(
        rt,
        SYSTEM,
        vms.VmRequest(
            name="pages", flavor="s1.small", count=3, tenant_id=acme, networks=(str(net.id),),
            security_groups=("web",), qos_policy="silver",
        ),
    )  # fmt: skip
    first, second = made.vms[0], made.vms[1]
    service.migrate(rt, SYSTEM, first.id, Target(), raise_error=False)
    with db.read_session() as s:
        host = s.get(Host, vms.get_vm(db, SYSTEM, second.id).host_id)
        assert host is not None
        host_id, host_name, module_id = host.id, host.name, host.module_id
    batch_id = batch.start(rt, SYSTEM, "evacuate-host", str(host_id), background=False)
    inventory.set_host_state(db, SYSTEM, host_id, HostState.ACTIVE)
    agents.issue_credential(db, SYSTEM, host_name)
    now = bucket_of(utcnow().timestamp(), 60)
    samples = [(b, k) for b in load_bindings(db)[0] for k in range(1, 6)]
    DatabaseFlowStore(db).write([_sample(b, now - 60 * k, k) for b, k in samples], [])
    with db.read_session() as s:
        workflow = s.scalars(select(Workflow.id).where(Workflow.tenant_id == acme)).first()
        assert s.get(MigrationBatch, batch_id) is not None
    ids = {
        "vm": str(made.vms[2].id),  # neither moved nor evacuated
        "vm_name": "pages-1",
        "network": str(net.id),
        "group": str(web.id),
        "workflow": str(workflow),
        "tenant": str(acme),
        "module": str(module_id),
        "host": str(host_id),
        "batch": str(batch_id),
    }
    db.dispose()
    return ids


def _sample(b: Any, at: int, k: int) -> TrafficRow:
    return TrafficRow(
        10, to_time(at), b.tenant_id, b.vm_id, b.network_id, k * 10**6, k * 10**5, 100, 10, 1
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url, admin_password = seed(tmp_path_factory.mktemp("every-page") / "fuyun.db")
    ids = _populate(url)
    with api_servers(url, env={"FUYUN_PORTAL_SIGNIN_FAILURES_PER_ADDRESS": "1000"}) as (base,):
        yield World(base, Account("admin", admin_password), ids)


def urls(ids: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Route -> (who, URL) visited for it: ``partner`` (acme), ``operator``, ``visitor``."""
    vm, net, sg, wf, host = ids["vm"], ids["network"], ids["group"], ids["workflow"], ids["host"]
    return {
        "/signin": [("visitor", "/signin")],
        "/": [("partner", "/"), ("operator", "/")],
        "/vms": [("partner", "/vms")],
        "/vms/new": [("partner", "/vms/new")],
        "/vms/{vm_id}": [("partner", f"/vms/{vm}"), ("operator", f"/vms/{vm}")],
        "/vms/{vm_id}/delete": [("partner", f"/vms/{vm}/delete")],
        "/networks": [("partner", "/networks")],
        "/networks/{network_id}": [("partner", f"/networks/{net}")],
        "/networks/{network_id}/delete": [("partner", f"/networks/{net}/delete")],
        "/groups": [("partner", "/groups")],
        "/security-groups": [("partner", "/security-groups")],
        "/security-groups/{group_id}": [("partner", f"/security-groups/{sg}")],
        "/qos": [("partner", "/qos")],
        "/route-leaks": [("partner", "/route-leaks"), ("operator", "/route-leaks")],
        "/traffic": [
            ("partner", "/traffic"),
            ("partner", f"/traffic?vm={ids['vm_name']}"),
            ("operator", "/traffic?tenant=acme"),
        ],
        "/audit": [("partner", "/audit")],
        "/workflows": [("partner", "/workflows")],
        "/workflows/{workflow_id}": [("partner", f"/workflows/{wf}")],
        "/ui/workflows.json": [("partner", "/ui/workflows.json")],
        "/ui/workflows/{workflow_id}.json": [("partner", f"/ui/workflows/{wf}.json")],
        "/account/users": [("partner", "/account/users")],
        "/account/tokens": [("partner", "/account/tokens")],
        "/ops/fabric": [("operator", "/ops/fabric")],
        "/ops/modules/{module_id}": [("operator", f"/ops/modules/{ids['module']}")],
        "/ops/hosts/{host_id}": [("operator", f"/ops/hosts/{host}")],
        "/ops/hosts/{host_id}/evacuate": [("operator", f"/ops/hosts/{host}/evacuate")],
        "/ops/migrations": [
            ("operator", "/ops/migrations"),
            ("operator", f"/ops/migrations?vm={vm}"),
        ],
        "/ops/migrations/batches/{batch_id}": [
            ("operator", f"/ops/migrations/batches/{ids['batch']}")
        ],
        "/ops/migrations/batches/{batch_id}.json": [
            ("operator", f"/ops/migrations/batches/{ids['batch']}.json")
        ],
        "/ops/verify": [("operator", "/ops/verify")],
        "/ops/plan": [("operator", "/ops/plan")],
        "/ops/tenants": [("operator", "/ops/tenants")],
        "/ops/tenants/{tenant_id}": [("operator", f"/ops/tenants/{ids['tenant']}")],
    }


def test_every_page_has_a_url_here() -> None:
    listed = urls(dict.fromkeys(("vm", "vm_name", "network", "group", "workflow", "tenant",
                                 "module", "host", "batch"), "x"))  # fmt: skip
    assert sorted(listed) == page_paths(), "a portal page has no URL in urls() (or one is gone)"


def _slug(url: str) -> str:
    url = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "id", url)
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-") or "home"


def _check(page: Any, url: str, phone: bool) -> str | None:
    """Assert what every page must have; answer how far it scrolls sideways, if it does."""
    answer = page.goto(url)
    assert answer is not None and answer.status == 200, (url, answer and answer.status)
    if url.endswith(".json") or ".json?" in url:
        return None
    assert page.evaluate(UNLABELLED) == [], url
    for landmark in ("banner", "main", "contentinfo"):
        assert page.get_by_role(landmark).count() >= 1, (url, landmark)
    assert page.get_by_role("heading", level=1).count() == 1, url
    if not phone:
        page.keyboard.press("Tab")
        expect(page.locator(":focus")).to_have_text("Skip to content")
    shot(page, f"{'phone-' if phone else ''}page-{_slug(url)}")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow <= 0:
        return None
    return f"{url} scrolls sideways by {overflow}px: {page.evaluate(WIDEST)}"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "phone"])
def test_every_page_answers_labelled_and_fits(browser: Any, world: World, viewport: Any) -> None:
    pages: dict[str, Any] = {}
    for who, account in (("partner", ACME), ("operator", world.operator), ("visitor", None)):
        context = browser.new_context(viewport=viewport, base_url=world.url)
        context.set_default_timeout(15_000)
        pages[who] = context.new_page()
        if account is not None:
            sign_in(pages[who], account)
    wide = []
    try:
        for _route, visits in urls(world.ids).items():
            for who, url in visits:
                wide.append(_check(pages[who], url, phone=viewport == PHONE))
    finally:
        for page in pages.values():
            page.context.close()
    assert not [w for w in wide if w], "\n".join(w for w in wide if w)


def test_the_portal_benchmark_measures_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/bench_portal.py refuses to run with a page missing; so does this test."""
    bench_dir = Path(__file__).resolve().parents[2] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench_dir))
    monkeypatch.setenv("FUYUN_ARGON2_PROFILE", os.environ.get("FUYUN_ARGON2_PROFILE", "fast"))
    spec = importlib.util.spec_from_file_location("bench_portal", bench_dir / "bench_portal.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_portal", bench)  # dataclasses look it up there
    spec.loader.exec_module(bench)
    ids = [uuid.uuid4() for _ in range(9)]
    world = bench.portal_world.World(ids[0], "vm", *ids[1:])
    assert bench.unmeasured(page_paths(), bench.page_urls(world)) == ([], [])
