"""The portal's pure parts, without a browser: throttling, heat buckets, forms, redirects."""

from __future__ import annotations

import uuid

import pytest

from fuyun.domain.enums import Role
from fuyun.domain.errors import InvalidInput, QuotaExceeded
from fuyun.portal import heat
from fuyun.portal.config import PortalConfig
from fuyun.portal.forms import FormState, optional_int, required_int
from fuyun.portal.nav import nav_for
from fuyun.portal.routes_auth import safe_next
from fuyun.portal.session import csrf_for
from fuyun.services.principal import Principal


def test_heat_buckets_ratios_and_hot() -> None:
    assert heat.ratio(5, 0) == 0.0
    assert heat.ratio(150, 100) == 1.0
    assert [heat.bucket(x) for x in (0, 0.04, 0.05, 0.5, 0.79, 1.0)] == [0, 0, 0, 5, 8, 10]
    assert heat.hot(0.8) and not heat.hot(0.79)
    usage = heat.Usage(vcpus_used=12, vcpus_cap=48.0, vms=3, max_vms=8, mac=0.9)
    assert usage.value("cpu") == 0.25 and usage.value("density") == 0.375
    assert usage.worst_table == 0.9
    assert heat.metric("nonsense").key == heat.DEFAULT_METRIC


def test_form_errors_land_on_their_field_or_above_the_form() -> None:
    form = FormState(("name", "count"), aliases={"vcpus": "count"})
    form.fail(QuotaExceeded("quota exceeded for vcpus", field="vcpus"))
    assert form.errors == {"count": "quota exceeded for vcpus"} and form.status == 409
    other = FormState(("name",)).fail(InvalidInput("no such tenant", field="tenant_id"))
    assert other.general == "no such tenant" and not other.errors


def test_number_fields_name_themselves_in_errors() -> None:
    assert optional_int(" ", "count") is None
    assert required_int("3", "count", low=1, high=500) == 3
    with pytest.raises(InvalidInput) as bad:
        optional_int("three", "count")
    assert bad.value.field == "count"
    with pytest.raises(InvalidInput, match="between 1 and 500"):
        required_int("501", "count", low=1, high=500)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/vms?state=active", "/vms?state=active"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        ("vms", "/"),
    ],
)
def test_sign_in_only_returns_to_this_site(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_csrf_token_is_bound_to_the_session() -> None:
    assert csrf_for("fyt_a") == csrf_for("fyt_a") != csrf_for("fyt_b")


def test_navigation_follows_the_role_and_names_what_is_planned() -> None:
    partner = Principal(None, "p", Role.TENANT_MEMBER, tenant_id=uuid.uuid4())
    operator = Principal(None, "o", Role.OPERATOR, tenant_id=None)
    partner_links = [i.href for _, items in nav_for(partner).sections for i in items]
    operator_links = [i.href for _, items in nav_for(operator).sections for i in items]
    assert "/ops/fabric" not in partner_links and "/account/users" not in partner_links
    assert "/ops/fabric" in operator_links
    assert {"/ops/migrations", "/ops/plan", "/ops/verify"} <= set(operator_links)
    assert {"/security-groups", "/qos", "/traffic"} <= set(partner_links)
    assert nav_for(operator).planned == [] and nav_for(partner).planned == []


def test_config_reads_the_environment() -> None:
    config = PortalConfig.from_env({"FUYUN_PORTAL_SIGNIN_FAILURES_PER_ACCOUNT": "3"})
    assert config.failures_per_account == 3 and config.failures_per_address == 20
    with pytest.raises(ValueError):
        PortalConfig.from_env({"FUYUN_PORTAL_SIGNIN_WINDOW_S": "0"})
