"""Security groups and rules, operator global rules, device desired state, verify."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlalchemy import select

from fuyun.api import schemas_policy as sp
from fuyun.api.deps import Caller, Ctx
from fuyun.api.routes.common import ERRORS
from fuyun.domain.errors import InvalidInput, NotFound
from fuyun.services import address_sets, policy, reports, verification
from fuyun.services.address_sets import device_text
from fuyun.services.policy import RuleSpec
from fuyun.store.models import DeviceState

router = APIRouter(responses=ERRORS)


def _spec(body: sp.RuleCreate) -> RuleSpec:
    return RuleSpec(
        direction=body.direction,
        ethertype=body.ethertype,
        protocol=body.protocol,
        port_min=body.port_min,
        port_max=body.port_max,
        remote_cidr=body.remote_cidr,
        remote_group=body.remote_group,
        description=body.description,
    )


@router.get(
    "/security-groups", response_model=list[sp.SecurityGroupPublic], tags=["security-groups"]
)
def list_groups(ctx: Ctx, who: Caller) -> list[sp.SecurityGroupPublic]:
    return [sp.SecurityGroupPublic.model_validate(g) for g in policy.list_groups(ctx.db, who)]


@router.post(
    "/security-groups",
    response_model=sp.SecurityGroupDetail,
    status_code=status.HTTP_201_CREATED,
    tags=["security-groups"],
)
def create_group(ctx: Ctx, who: Caller, body: sp.SecurityGroupCreate) -> sp.SecurityGroupDetail:
    group = policy.create_group(
        ctx.db, who, name=body.name, description=body.description, tenant_id=body.tenant_id
    )
    return get_group(ctx, who, group.id)


@router.get(
    "/security-groups/{group_id}", response_model=sp.SecurityGroupDetail, tags=["security-groups"]
)
def get_group(ctx: Ctx, who: Caller, group_id: uuid.UUID) -> sp.SecurityGroupDetail:
    group, rules = policy.get_group(ctx.db, who, group_id)
    base = sp.SecurityGroupPublic.model_validate(group).model_dump()
    return sp.SecurityGroupDetail(**base, rules=[sp.RulePublic.model_validate(r) for r in rules])


@router.delete(
    "/security-groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["security-groups"]
)
def delete_group(ctx: Ctx, who: Caller, group_id: uuid.UUID) -> None:
    """Refused (409) while ports carry the group or other groups' rules refer to it."""
    policy.delete_group(ctx.db, who, group_id)


@router.post(
    "/security-groups/{group_id}/rules",
    response_model=sp.RulePublic,
    status_code=status.HTTP_201_CREATED,
    tags=["security-group-rules"],
)
def add_rule(ctx: Ctx, who: Caller, group_id: uuid.UUID, body: sp.RuleCreate) -> sp.RulePublic:
    """Add an allow rule; the affected devices are recompiled before this answers."""
    return sp.RulePublic.model_validate(policy.add_rule(ctx.db, who, group_id, _spec(body)))


@router.delete(
    "/security-group-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["security-group-rules"],
)
def delete_rule(ctx: Ctx, who: Caller, rule_id: uuid.UUID) -> None:
    policy.delete_rule(ctx.db, who, rule_id)


@router.put(
    "/ports/{port_id}/security-groups", response_model=list[sp.SecurityGroupPublic], tags=["ports"]
)
def set_port_groups(
    ctx: Ctx, who: Caller, port_id: uuid.UUID, body: sp.PortGroups
) -> list[sp.SecurityGroupPublic]:
    groups = policy.update_port_groups(ctx.db, ctx.settings, who, port_id, body.security_groups)
    return [sp.SecurityGroupPublic.model_validate(g) for g in groups]


@router.get("/global-rules", response_model=list[sp.GlobalRulePublic], tags=["global-rules"])
def list_global(ctx: Ctx, who: Caller) -> list[sp.GlobalRulePublic]:
    return [sp.GlobalRulePublic.model_validate(r) for r in policy.list_global_rules(ctx.db, who)]


@router.post(
    "/global-rules",
    response_model=sp.GlobalRulePublic,
    status_code=status.HTTP_201_CREATED,
    tags=["global-rules"],
)
def add_global(ctx: Ctx, who: Caller, body: sp.GlobalRuleCreate) -> sp.GlobalRulePublic:
    """Operators: a rule on every port that tenants cannot override (deny beats allow)."""
    return sp.GlobalRulePublic.model_validate(
        policy.add_global_rule(
            ctx.db, who, action=body.action, spec=_spec(body), priority=body.priority
        )
    )


@router.delete(
    "/global-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["global-rules"]
)
def delete_global(ctx: Ctx, who: Caller, rule_id: uuid.UUID) -> None:
    policy.delete_global_rule(ctx.db, who, rule_id)


@router.get("/address-sets", response_model=list[sp.AddressSetPublic], tags=["security-groups"])
def list_address_sets(
    ctx: Ctx,
    who: Caller,
    group_id: Annotated[uuid.UUID | None, Query(description="one group's sets")] = None,
) -> list[sp.AddressSetPublic]:
    """Each group's member addresses per family, stored once: version, size, referrers.

    A member joining or leaving moves the set's ``generation`` and bumps every
    referring device's desired generation; the devices' own policy is not rewritten.
    """
    return [
        sp.AddressSetPublic.model_validate(v, from_attributes=True)
        for v in address_sets.list_sets(ctx.db, who, group_id=group_id)
    ]


@router.get("/address-sets/{name}", response_model=sp.AddressSetDetail, tags=["security-groups"])
def get_address_set(
    ctx: Ctx, who: Caller, name: Annotated[str, Path(max_length=48)]
) -> sp.AddressSetDetail:
    """One set with its members (as devices are given them when they are applied)."""
    view = address_sets.get_set(ctx.db, who, name)
    return sp.AddressSetDetail.model_validate(
        {**view.__dict__, "addresses": list(view.addresses or ())}
    )


@router.get("/devices", response_model=list[sp.DevicePublic], tags=["devices"])
def list_devices(
    ctx: Ctx,
    who: Caller,
    lagging: Annotated[bool, Query(description="only devices behind")] = False,
) -> list[sp.DevicePublic]:
    """Desired vs applied generation of every device: who lags."""
    who.require_operator()
    with ctx.db.read_session() as s:
        stmt = select(DeviceState).order_by(DeviceState.device_type, DeviceState.device_name)
        if lagging:
            stmt = stmt.where(DeviceState.applied_generation < DeviceState.desired_generation)
        return [sp.DevicePublic.model_validate(d) for d in s.scalars(stmt)]


@router.get(
    "/devices/{device_type}/{device_name}", response_model=sp.DeviceConfig, tags=["devices"]
)
def get_device(
    ctx: Ctx,
    who: Caller,
    device_type: Annotated[str, Path(max_length=16)],
    device_name: Annotated[str, Path(max_length=64)],
    enforcement_point: Annotated[str | None, Query(max_length=16)] = None,
) -> sp.DeviceConfig:
    """A device's compiled configuration, as rendered for its platform.

    A host carries several documents (its policy, its port map, its QoS): when the
    device has more than one, ``enforcement_point`` must say which, and the 422 lists
    the ones it has.
    """
    who.require_operator()
    with ctx.db.read_session() as s:
        stmt = select(DeviceState).where(
            DeviceState.device_type == device_type, DeviceState.device_name == device_name
        )
        if enforcement_point:
            stmt = stmt.where(DeviceState.enforcement_point == enforcement_point)
        rows = list(s.scalars(stmt.order_by(DeviceState.enforcement_point)))
        if not rows:
            if enforcement_point:
                raise NotFound(
                    f"{device_type} {device_name} has no '{enforcement_point}' document",
                    field="enforcement_point",
                )
            raise NotFound("no such device state", field="device_name")
        if len(rows) > 1:
            raise InvalidInput(
                f"{device_type} {device_name} has {len(rows)} documents; choose one with "
                "enforcement_point: " + ", ".join(r.enforcement_point for r in rows),
                field="enforcement_point",
            )
        row = rows[0]
        base = sp.DevicePublic.model_validate(row).model_dump()
        return sp.DeviceConfig(
            **base,
            rendered=device_text(s, row.rendered, row.ir, row.flavor, row.digest),
            ports=len((row.ir or {}).get("ports", [])),
        )


@router.get("/verify", response_model=sp.VerifyPublic, tags=["verify"])
def verify(
    ctx: Ctx, who: Caller, limit: Annotated[int, Query(ge=0, le=10000)] = 200
) -> sp.VerifyPublic:
    """Operators: who can reach whom, from compiled device state alone, against intent.

    Computed now and not stored; ``POST /verify/runs`` computes and stores a run.
    """
    rep = verification.verify(ctx.db, who, limit=limit)
    return sp.VerifyPublic.model_validate(verification.document(rep, limit))


def _run_public(run: reports.Run) -> sp.VerifyRunPublic:
    return sp.VerifyRunPublic(
        id=run.id,
        created_at=run.created_at,
        created_by=run.created_by,
        age_seconds=round(run.age_seconds, 1),
        basis=run.basis,
        current_basis=run.current_basis,
        stale=run.stale,
        parameters=run.parameters,
        summary=run.summary,
        report=sp.VerifyPublic.model_validate(run.document),
    )


@router.post("/verify/runs", response_model=sp.VerifyRunPublic, status_code=201, tags=["verify"])
def verify_run(
    ctx: Ctx, who: Caller, limit: Annotated[int, Query(ge=0, le=10000)] = 200
) -> sp.VerifyRunPublic:
    """Operators: verify now and store the run; pages and ``GET`` read it back."""
    return _run_public(verification.run(ctx.db, who, limit=limit))


@router.get("/verify/runs/latest", response_model=sp.VerifyRunPublic, tags=["verify"])
def verify_latest(ctx: Ctx, who: Caller) -> sp.VerifyRunPublic:
    """Operators: the latest stored verification, and whether compiled state changed since."""
    run = verification.latest(ctx.db, who)
    if run is None:
        raise NotFound("no verification was stored yet: POST /verify/runs", field="verify")
    return _run_public(run)
