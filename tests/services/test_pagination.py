"""Cursor pagination and prefix filters behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from fuyun.services.pagination import paginate, prefix_filter
from fuyun.store.engine import Database
from fuyun.store.models import Tenant


def test_walks_every_row_once_in_order(any_db: Database) -> None:
    names = [f"t{i:03d}" for i in range(57)] + ["T-upper", "t-dash", "u1"]
    with any_db.write_session() as s:
        s.add_all(Tenant(name=n) for n in names)
    seen: list[str] = []
    cursor = None
    with any_db.read_session() as s:
        while True:
            page = paginate(
                s, select(Tenant), sort=Tenant.name, id_column=Tenant.id, limit=7, cursor=cursor
            )
            seen += [t.name for t in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == sorted(names, key=lambda n: n.encode()) or seen == sorted(names)
    assert len(seen) == len(set(seen)) == len(names)


def test_prefix_is_exact_and_case_sensitive(any_db: Database) -> None:
    with any_db.write_session() as s:
        s.add_all(Tenant(name=n) for n in ("bj1-a", "bj1-b", "BJ1-c", "bj10", "bj2-a"))
    with any_db.read_session() as s:
        got = sorted(s.scalars(select(Tenant.name).where(prefix_filter(Tenant.name, "bj1-"))))
    assert got == ["bj1-a", "bj1-b"]
