"""Tenant isolation, walked over every route the OpenAPI schema publishes.

Tenant A creates one of everything it can own. Then tenant B calls every route
that takes an id, with A's ids: the answer must be 404 for A's objects (their
existence does not leak) and 403 for the operator-only fabric. Lists as B must
contain nothing of A's. A new route is covered the day it appears.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api, TenantAccount

PARAM = re.compile(r"\{([^}]+)\}")
# The operator's world: tenants may not even read it.
FABRIC = {
    "hosts",
    "switches",
    "modules",
    "sites",
    "interconnects",
    "module-links",
    "server-models",
    "vlan-pools",
    "prefixes",
}
# Operator-only resources that hold no tenant's objects.
OPERATOR = {
    "global-rules",
    "devices",
    "agent-credentials",
    "agent",
    "migrations",
    "migration-batches",
}
# Operator-only actions on a tenant's object: refused before the object is looked up.
OPERATOR_ACTIONS = ("/explain", "/migration-plan", "/migrate", "/approve")
# Readable by all, changed by operators only.
CATALOG = {"flavors"}


def _populate(api: Api, a: TenantAccount) -> dict[str, str]:
    vm = api.client.post(
        "/api/v1/vms", headers=a.headers, json={"name": "secret", "flavor": "s1.small"}
    ).json()["items"][0]
    user = api.client.post(
        "/api/v1/users",
        headers=a.headers,
        json={"username": "a-member", "role": "tenant-member", "password": "pa55word!"},
    ).json()
    token = api.client.post("/api/v1/tokens", headers=a.headers, json={"name": "a"}).json()
    net = api.client.post(
        "/api/v1/networks", headers=a.headers, json={"name": "secret-net", "cidr": "10.7.0.0/24"}
    ).json()
    port = api.client.post("/api/v1/ports", headers=a.headers, json={"network_id": net["id"]})
    prefix = api.client.post(
        "/api/v1/prefixes", headers=api.op, json={"cidr": "100.64.0.0/16", "kind": "aggregate"}
    ).json()
    pool = api.client.get("/api/v1/vlan-pools", headers=api.op).json()[0]
    group = api.client.post(
        "/api/v1/server-groups",
        headers=a.headers,
        json={"name": "ha", "policy": "anti-affinity", "level": "host"},
    ).json()
    workflows = api.client.get("/api/v1/workflows", headers=a.headers).json()["items"]
    sg = api.client.post("/api/v1/security-groups", headers=a.headers, json={"name": "sg"}).json()
    rule = api.client.post(
        f"/api/v1/security-groups/{sg['id']}/rules", headers=a.headers, json={"direction": "egress"}
    ).json()
    # A member of ``sg``, so the group has an address set (``/address-sets/{name}``).
    member = api.client.post(
        "/api/v1/vms",
        headers=a.headers,
        json={
            "name": "member",
            "flavor": "s1.small",
            "networks": ["secret-net"],
            "security_groups": ["sg"],
        },
    )
    assert member.status_code == 201, member.text
    qos = api.client.post(
        "/api/v1/qos-policies",
        headers=a.headers,
        json={"name": "secret-qos", "guarantee_mbps": 10, "ceiling_mbps": 100},
    ).json()
    assert api.client.put(
        f"/api/v1/vms/{vm['id']}/qos-policy", headers=a.headers, json={"qos_policy": qos["id"]}
    ).status_code in (200, 409)
    # A route leak between A's network and a third tenant's (B is neither side).
    third = api.client.post("/api/v1/tenants", headers=api.op, json={"name": "charlie"}).json()
    peer = api.client.post(
        "/api/v1/networks",
        headers=api.op,
        json={"name": "peer", "cidr": "10.8.0.0/24", "site": "sz1", "tenant_id": third["id"]},
    ).json()
    leak = api.client.post(
        "/api/v1/route-leaks",
        headers=a.headers,
        json={"network_id": net["id"], "peer_network_id": peer["id"]},
    ).json()
    ids = {
        "leak_id": leak["id"],
        "policy_id": qos["id"],
        "security-groups": sg["id"],
        "name": f"sg_{uuid.UUID(sg['id']).hex}_v4",
        "rule_id": rule["id"],
        "device_type": "host",
        "device_name": "sz1-m01-t01-h01",
        "group_id": group["id"],
        "workflow_id": workflows[0]["id"],
        "network_id": net["id"],
        "port_id": port.json()["id"],
        "prefix_id": prefix["id"],
        "pool_id": pool["id"],
        "vm_id": vm["id"],
        "user_id": user["id"],
        "token_id": token["id"],
        "tenant_id": a.id,
        "verb": "stop",
        "host": "sz1-m01-t01-h01",
        "credential_id": api.client.post(
            "/api/v1/hosts/sz1-m01-t01-h01/agent-credentials", headers=api.op
        ).json()["id"],
        "batch_id": str(uuid.uuid4()),
    }
    for collection in (FABRIC | CATALOG) - {"vlan-pools", "prefixes"}:
        page = api.client.get(f"/api/v1/{collection}", headers=api.op, params={"limit": 1})
        items = page.json()["items"]
        # The small fabric has no module links: tenants are refused before any lookup.
        ids[collection] = items[0]["id"] if items else str(uuid.uuid4())
    return ids


def _body_for(spec: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    op = spec["paths"][path][method]
    return {} if "requestBody" in op else None


def test_tenant_b_cannot_touch_any_of_tenant_a(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    a, b = make_tenant("alpha"), make_tenant("bravo")
    ids = _populate(api, a)
    spec = api.client.get("/api/v1/openapi.json").json()
    checked = 0
    for path, methods in spec["paths"].items():
        params = PARAM.findall(path)
        if not params:
            continue
        for method in methods:
            collection = path.split("/")[3]
            url = path
            for p in params:
                key = collection if p == "object_id" else p
                if collection == "security-groups" and p == "group_id":
                    key = "security-groups"
                url = url.replace("{" + p + "}", ids[key])
            body = _body_for(spec, path, method)
            r = api.client.request(method.upper(), url, headers=b.headers, json=body)
            if collection in FABRIC or path.endswith(OPERATOR_ACTIONS) or collection in OPERATOR:
                expected = {403}
            elif collection in CATALOG:
                expected = {200} if method == "get" else {403}
            else:
                expected = {404}
            # A body that fails validation first is fine too, as long as nothing leaks.
            allowed = expected | ({422} if body is not None else set())
            assert r.status_code in allowed, f"{method.upper()} {url}: {r.status_code} {r.text}"
            checked += 1
    assert checked >= 20

    # And every mutation B tried left A's objects as they were.
    vm = api.client.get(f"/api/v1/vms/{ids['vm_id']}", headers=a.headers)
    assert vm.status_code == 200 and vm.json()["state"] == "active"
    token_ok = api.client.get("/api/v1/tokens", headers=a.headers).json()["items"]
    assert any(t["id"] == ids["token_id"] and t["revoked_at"] is None for t in token_ok)


def test_lists_show_b_nothing_of_a(api: Api, make_tenant: Callable[..., TenantAccount]) -> None:
    a, b = make_tenant("alpha"), make_tenant("bravo")
    ids = _populate(api, a)
    spec = api.client.get("/api/v1/openapi.json").json()
    for path, methods in spec["paths"].items():
        if "get" not in methods or PARAM.search(path):
            continue
        r = api.client.get(path, headers=b.headers)
        assert r.status_code in (200, 403, 422), f"GET {path}: {r.status_code}"
        if r.status_code == 200:
            text = r.text
            for key in (
                "vm_id",
                "user_id",
                "token_id",
                "tenant_id",
                "network_id",
                "port_id",
                "group_id",
                "workflow_id",
                "rule_id",
                "security-groups",
                "policy_id",
                "leak_id",
            ):
                assert ids[key] not in text, f"GET {path} leaks tenant A's {key}"
            assert "secret" not in text and "alpha" not in text


def test_operator_filter_by_other_tenant_is_empty_for_tenants(
    api: Api, make_tenant: Callable[..., TenantAccount]
) -> None:
    a, b = make_tenant("alpha"), make_tenant("bravo")
    _populate(api, a)
    r = api.client.get("/api/v1/vms", headers=b.headers, params={"tenant_id": a.id})
    assert r.status_code == 200 and r.json()["items"] == []
    r = api.client.get("/api/v1/audit-events", headers=b.headers, params={"tenant_id": a.id})
    assert r.status_code == 200 and r.json()["items"] == []
