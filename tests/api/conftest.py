"""An in-process API on a migrated SQLite store seeded with the ``small`` fabric."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fuyun.api.app import create_app
from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database


@dataclass
class Api:
    client: TestClient
    db: Database
    driver: FakeComputeDriver
    operator_token: str

    def as_(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def op(self) -> dict[str, str]:
        return self.as_(self.operator_token)

    def ports_of(self, vms: list[dict[str, Any]], headers: dict[str, str]) -> list[dict[str, Any]]:
        """The ports of these VMs (as the API lists them), VM by VM."""
        return [
            p
            for vm in vms
            for p in self.client.get(f"/api/v1/ports?vm_id={vm['id']}", headers=headers).json()[
                "items"
            ]
        ]

    def enforce_at_tors(self, platform: str = "nxos") -> None:
        """Every module enforces at its ToRs (``tor-acl``), every switch of ``platform``."""
        from sqlalchemy import select

        from fuyun.store.models import Module, Switch

        with self.db.write_session() as s:
            for module in s.scalars(select(Module)):
                module.enforcement_point = "tor-acl"
            for switch in s.scalars(select(Switch)):
                switch.platform = platform


@dataclass
class TenantAccount:
    id: str
    name: str
    admin_token: str
    headers: dict[str, str]


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One migrated store with the ``small`` fabric and an operator, copied per test."""
    path = tmp_path_factory.mktemp("seed") / "fuyun.db"
    db = Database(f"sqlite:///{path}")
    result = bootstrap(db, Settings(database_url=db.url), FakeComputeDriver(), fabric="small")
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path, result.token


@pytest.fixture
def api(seeded_store: tuple[Path, str], tmp_path: Path) -> Iterator[Api]:
    template, token = seeded_store
    path = tmp_path / "fuyun.db"
    shutil.copy(template, path)
    db = Database(f"sqlite:///{path}")
    settings = Settings(database_url=db.url)
    driver = FakeComputeDriver()
    app = create_app(settings, db=db, compute_driver=driver)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client=client, db=db, driver=driver, operator_token=token)
    db.dispose()


@pytest.fixture
def make_tenant(api: Api) -> Callable[..., TenantAccount]:
    """Create a tenant with an admin user and return the admin's token."""

    def make(name: str, **quotas: int) -> TenantAccount:
        r = api.client.post(
            "/api/v1/tenants", headers=api.op, json={"name": name, "quotas": quotas}
        )
        assert r.status_code == 201, r.text
        tenant_id = r.json()["id"]
        r = api.client.post(
            "/api/v1/users",
            headers=api.op,
            json={
                "username": f"{name}-admin",
                "role": "tenant-admin",
                "tenant_id": tenant_id,
                "password": "correct-horse",
            },
        )
        assert r.status_code == 201, r.text
        r = api.client.post(
            "/api/v1/auth/login", json={"username": f"{name}-admin", "password": "correct-horse"}
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        return TenantAccount(tenant_id, name, token, api.as_(token))

    return make
