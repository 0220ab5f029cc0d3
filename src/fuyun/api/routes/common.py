"""Small helpers shared by route modules."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from fuyun.api.schemas import ErrorResponse
from fuyun.services.pagination import MAX_LIMIT, Page

Limit = Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[str | None, Query(max_length=512, description="from a previous page")]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)
}


def page_of(page: Page[Any], schema: type[BaseModel]) -> dict[str, Any]:
    return {
        "items": [schema.model_validate(i) for i in page.items],
        "next_cursor": page.next_cursor,
    }
