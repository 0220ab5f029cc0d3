"""The fabric inventory and catalogs: one route set per resource, built from a table.

Each resource gets list (filters, cursor), show, create, update and delete, with
its own Create / Update / Public schemas, so the OpenAPI document is exact.
"""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel

from fuyun.api import schemas as s
from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS, Cursor, Limit, page_of
from fuyun.domain.errors import InvalidInput
from fuyun.services import inventory

router = APIRouter(responses=ERRORS)


@dataclass(frozen=True)
class Route:
    kind: str
    path: str
    tag: str
    public: type[BaseModel]
    create: type[BaseModel]
    update: type[BaseModel] | None


ROUTES = (
    Route(
        "server-model",
        "server-models",
        "server-models",
        s.ServerModelPublic,
        s.ServerModelCreate,
        None,
    ),
    Route("flavor", "flavors", "flavors", s.FlavorPublic, s.FlavorCreate, s.FlavorUpdate),
    Route("site", "sites", "sites", s.SitePublic, s.SiteCreate, s.SiteUpdate),
    Route(
        "interconnect",
        "interconnects",
        "interconnects",
        s.InterconnectPublic,
        s.InterconnectCreate,
        s.InterconnectUpdate,
    ),
    Route("module", "modules", "modules", s.ModulePublic, s.ModuleCreate, s.ModuleUpdate),
    Route(
        "module-link",
        "module-links",
        "module-links",
        s.ModuleLinkPublic,
        s.ModuleLinkCreate,
        s.ModuleLinkUpdate,
    ),
    Route("switch", "switches", "switches", s.SwitchPublic, s.SwitchCreate, s.SwitchUpdate),
    Route("host", "hosts", "hosts", s.HostPublic, s.HostCreate, s.HostUpdate),
)

FilterStr = Annotated[str | None, Query(max_length=64)]


def _filters(request: Request, kind: str) -> dict[str, Any]:
    allowed = inventory.RESOURCES[kind].filters
    known = {"limit", "cursor", "name_prefix", *allowed}
    for key in request.query_params:
        if key not in known:
            raise InvalidInput(f"unknown query parameter '{key}'", field=key)
    values = {k: request.query_params.get(k) for k in allowed}
    for k, v in values.items():
        if v is not None and len(v) > 64:
            raise InvalidInput(f"{k} is longer than 64 characters", field=k)
    return values


def _fabric_changed(ctx: Ctx, kind: str) -> None:
    """The scheduler's snapshot is rebuilt after the fabric itself changes."""
    if kind in ("host", "switch", "module", "module-link"):
        ctx.runtime.placement.invalidate()


def _register(route: Route) -> None:
    kind, public = route.kind, route.public
    filters = inventory.RESOURCES[kind].filters
    filter_doc = ", ".join(filters) if filters else "none"

    def list_(
        ctx: Ctx,
        who: Caller,
        request: Request,
        name_prefix: FilterStr = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> dict:
        page = inventory.list_objects(
            ctx.db,
            who,
            kind,
            filters=_filters(request, kind),
            name_prefix=name_prefix,
            limit=limit,
            cursor=cursor,
        )
        return page_of(page, public)

    list_.__doc__ = f"List {route.path}. Filters (name or id where a reference): {filter_doc}."
    # The filters are read from the query string; declare them for the OpenAPI document.
    documented = [
        {"name": f, "in": "query", "required": False, "schema": {"type": "string", "maxLength": 64}}
        for f in filters
    ]
    router.add_api_route(
        f"/{route.path}",
        list_,
        methods=["GET"],
        tags=[route.tag],
        response_model=s.ListOf[public],  # type: ignore[name-defined]
        name=f"list_{route.path}",
        openapi_extra={"parameters": documented},
    )

    def show(ctx: Ctx, who: Caller, object_id: uuid.UUID) -> Any:
        return public.model_validate(inventory.get_object(ctx.db, who, kind, object_id))

    router.add_api_route(
        f"/{route.path}/{{object_id}}",
        show,
        methods=["GET"],
        tags=[route.tag],
        response_model=public,
        name=f"get_{kind}",
    )

    create_model = route.create

    def create(ctx: Ctx, who: Caller, body: create_model) -> Any:  # type: ignore[valid-type]
        made = inventory.create_object(ctx.db, who, kind, body.model_dump(mode="json"))
        _fabric_changed(ctx, kind)
        return public.model_validate(made)  # type: ignore[attr-defined]

    router.add_api_route(
        f"/{route.path}",
        create,
        methods=["POST"],
        tags=[route.tag],
        response_model=public,
        status_code=status.HTTP_201_CREATED,
        name=f"create_{kind}",
    )

    if route.update is not None:
        update_model = route.update

        def update(ctx: Ctx, who: Caller, object_id: uuid.UUID, body: update_model) -> Any:  # type: ignore[valid-type]
            values = body.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
            changed = inventory.update_object(ctx.db, who, kind, object_id, values)
            _fabric_changed(ctx, kind)
            return public.model_validate(changed)

        router.add_api_route(
            f"/{route.path}/{{object_id}}",
            update,
            methods=["PATCH"],
            tags=[route.tag],
            response_model=public,
            name=f"update_{kind}",
        )

    def delete(ctx: Ctx, who: Caller, object_id: uuid.UUID) -> None:
        inventory.delete_object(ctx.db, who, kind, object_id)
        _fabric_changed(ctx, kind)

    router.add_api_route(
        f"/{route.path}/{{object_id}}",
        delete,
        methods=["DELETE"],
        tags=[route.tag],
        status_code=status.HTTP_204_NO_CONTENT,
        name=f"delete_{kind}",
    )


for _route in ROUTES:
    _register(_route)


@router.post("/hosts/{object_id}/state", response_model=s.HostStateChange, tags=["hosts"])
def set_host_state(
    ctx: Ctx, who: Caller, object_id: uuid.UUID, body: s.HostStateIn
) -> s.HostStateChange:
    """Put a host into maintenance (no new placements) or back into service.

    The answer lists the VMs that must move before the host can be worked on.
    """
    host, vms = inventory.set_host_state(ctx.db, who, object_id, body.state)
    ctx.runtime.placement.host_state_changed(host.id, host.state)
    return s.HostStateChange(
        host=s.HostPublic.model_validate(host), vms_to_move=[vm.id for vm in vms]
    )
