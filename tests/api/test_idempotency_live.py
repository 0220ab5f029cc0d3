"""Idempotency under concurrency: the same key sent at once to two API processes on
PostgreSQL, with workflows run by a separate worker, creates exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from fuyun.config import Settings
from fuyun.drivers.compute.fake import FakeComputeDriver
from fuyun.services.bootstrap import bootstrap
from fuyun.store.engine import Database
from fuyun.store.models import IdempotencyKey, Vm
from tests.support.scaleout import check_books, cluster


@pytest.mark.slow
def test_simultaneous_retries_on_two_processes_create_once(pg_db: Database, tmp_path: Path) -> None:
    token = bootstrap(
        pg_db, Settings(database_url=pg_db.url), FakeComputeDriver(), fabric="small"
    ).token
    with cluster(pg_db.url, tmp_path, apis=2, workers=1, env={}) as (apis, _):
        urls = [a.url for a in apis]
        auth = {"Authorization": f"Bearer {token}"}
        tenant = httpx.post(f"{urls[0]}/api/v1/tenants", headers=auth, json={"name": "t"}).json()
        body = {"name": "once", "flavor": "s1.small", "count": 2, "tenant_id": tenant["id"]}

        def send(i: int) -> httpx.Response:
            return httpx.post(
                f"{urls[i % 2]}/api/v1/vms",
                headers={**auth, "Idempotency-Key": "create-once"},
                json=body,
                timeout=120,
            )

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(8)))
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert len({r.content for r in answers}) == 1  # byte for byte the same answer
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 7
    with pg_db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Vm).where(Vm.name.like("once%"))) == 2
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
    check_books(pg_db)
