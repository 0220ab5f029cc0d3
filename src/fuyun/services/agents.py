"""Host agents: their credentials, the desired state they read, the applied state they report.

An agent authenticates with a per-host secret (``fyh_…``; only its digest is kept)
that the general API refuses outright and that the agent endpoints accept for that
one host only, so a compromised hypervisor can read nothing but its own devices'
desired state and move nothing but their applied generations.

A host's devices are its own (``host`` devices named after it: vswitch policy, QoS)
and the ``guest`` devices of the ports bound to it. The resume token of a watch is
the host's version vector — each device's id and desired generation — encoded
opaquely, so any controller can tell from the store alone what changed since a
token was issued: a watch survives controller restarts and load balancers, and a
change is never lost, only reported once it is visible in the store.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from fuyun.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from fuyun.services.address_sets import device_text
from fuyun.services.audit import mutation
from fuyun.services.identity import digest
from fuyun.services.inventory import resolve_ref
from fuyun.services.principal import Principal
from fuyun.store.engine import Database
from fuyun.store.models import DeviceState, Host, HostCredential, Port
from fuyun.store.types import utcnow

HOST_TOKEN_PREFIX = "fyh_"
TOKEN_VERSION = "v1."


@dataclass(frozen=True)
class AgentPrincipal:
    """Who calls an agent endpoint: a host's agent, or an operator (for any host)."""

    host_id: uuid.UUID | None
    host_name: str | None
    operator: Principal | None = None

    def require_host(self, host: Host) -> None:
        if self.operator is not None:
            return
        if self.host_id != host.id:
            raise Forbidden(f"this credential is for host {self.host_name} only", field="host")


@dataclass(frozen=True)
class IssuedCredential:
    credential: HostCredential
    host_name: str
    secret: str


@dataclass(frozen=True)
class DeviceView:
    id: uuid.UUID
    device_type: str
    device_name: str
    enforcement_point: str
    flavor: str
    desired_generation: int
    applied_generation: int
    digest: str
    rendered: str


@dataclass(frozen=True)
class HostState:
    host: str
    token: str
    devices: list[DeviceView]
    removed: list[str]
    full: bool

    @property
    def changed(self) -> bool:
        return self.full or bool(self.devices) or bool(self.removed)


# -- credentials -----------------------------------------------------------------------


def issue_credential(db: Database, principal: Principal, host_ref: str) -> IssuedCredential:
    """A new secret for ``host_ref``'s agent, shown once (operators only)."""
    principal.require_operator()
    with mutation(db, principal, "host.agent_credential.create", "host") as m:
        host_id = resolve_ref(m.session, Host, host_ref, "host")
        host = m.session.get(Host, host_id)
        assert host is not None
        secret = HOST_TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = HostCredential(
            host_id=host_id,
            token_hash=digest(secret),
            prefix=secret[:12],
            created_at=utcnow(),
        )
        m.session.add(row)
        m.session.flush()
        m.object_id = str(host_id)
        m.detail = {"host": host.name, "credential_id": str(row.id), "prefix": row.prefix}
        return IssuedCredential(row, host.name, secret)


def list_credentials(db: Database, principal: Principal, host_ref: str) -> list[HostCredential]:
    principal.require_operator()
    with db.read_session() as s:
        host_id = resolve_ref(s, Host, host_ref, "host")
        return list(
            s.scalars(
                select(HostCredential)
                .where(HostCredential.host_id == host_id)
                .order_by(HostCredential.created_at)
            )
        )


def revoke_credential(db: Database, principal: Principal, credential_id: uuid.UUID) -> None:
    principal.require_operator()
    with mutation(
        db, principal, "host.agent_credential.revoke", "host", object_id=credential_id
    ) as m:
        row = m.session.get(HostCredential, credential_id)
        if row is None:
            raise NotFound("no such agent credential", field="credential_id")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        m.detail = {"prefix": row.prefix}


def authenticate_host(db: Database, secret: str) -> AgentPrincipal:
    if not secret.startswith(HOST_TOKEN_PREFIX) or len(secret) > 200:
        raise Unauthenticated("invalid agent credential")
    with db.read_session() as s:
        row = s.execute(
            select(HostCredential, Host.name)
            .join(Host, Host.id == HostCredential.host_id)
            .where(HostCredential.token_hash == digest(secret))
        ).first()
    if row is None or row[0].revoked_at is not None:
        raise Unauthenticated("invalid agent credential")
    return AgentPrincipal(row[0].host_id, row[1])


def resolve_host(db: Database, agent: AgentPrincipal, host_ref: str) -> Host:
    with db.read_session() as s:
        try:
            host_id = resolve_ref(s, Host, host_ref, "host")
        except InvalidInput:
            raise NotFound(f"no host '{host_ref}'", field="host") from None
        host = s.get(Host, host_id)
        assert host is not None
    agent.require_host(host)
    return host


# -- desired state and watch -----------------------------------------------------------


def _device_filter(s: Session, host: Host) -> Any:
    guests = [str(p) for p in s.scalars(select(Port.id).where(Port.host_id == host.id))]
    cond = and_(DeviceState.device_type == "host", DeviceState.device_name == host.name)
    if guests:
        cond = or_(
            cond, and_(DeviceState.device_type == "guest", DeviceState.device_name.in_(guests))
        )
    return cond


def _vector(db: Database, host: Host) -> dict[str, int]:
    with db.read_session() as s:
        rows = s.execute(
            select(DeviceState.id, DeviceState.desired_generation).where(_device_filter(s, host))
        )
        return {r[0].hex: int(r[1]) for r in rows}


def encode_token(vector: dict[str, int]) -> str:
    raw = json.dumps(sorted(vector.items()), separators=(",", ":")).encode()
    return TOKEN_VERSION + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode_token(token: str) -> dict[str, int]:
    """The version vector inside a token; a malformed one is a 422 naming ``since``."""
    try:
        if not token.startswith(TOKEN_VERSION) or len(token) > 20000:
            raise ValueError("unknown token version")
        body = token[len(TOKEN_VERSION) :]
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return {str(k): int(v) for k, v in json.loads(raw)}
    except (ValueError, TypeError, zlib.error) as exc:
        raise InvalidInput("since is not a token this API issued", field="since") from exc


def desired_state(db: Database, host: Host, since: str | None = None) -> HostState:
    """The host's devices: all of them, or (``since`` a token) only what changed since."""
    known = decode_token(since) if since is not None else None
    with db.read_session() as s:
        rows = list(
            s.scalars(select(DeviceState).where(_device_filter(s, host)).order_by(DeviceState.id))
        )
        vector = {r.id.hex: r.desired_generation for r in rows}
        if known is None:
            changed, removed = rows, []
        else:
            changed = [r for r in rows if known.get(r.id.hex) != r.desired_generation]
            removed = sorted(k for k in known if k not in vector)
        # Texts in the same snapshot as the generations (address sets hydrated).
        devices = [_view(s, r) for r in changed]
    return HostState(
        host=host.name,
        token=encode_token(vector),
        devices=devices,
        removed=removed,
        full=known is None,
    )


def unchanged(db: Database, host: Host, since: str) -> bool:
    """Cheap check for a watch: does the host's version vector still equal ``since``'s?"""
    return _vector(db, host) == decode_token(since)


def _view(s: Session, r: DeviceState) -> DeviceView:
    return DeviceView(
        r.id,
        r.device_type,
        r.device_name,
        r.enforcement_point,
        r.flavor,
        r.desired_generation,
        r.applied_generation,
        r.digest,
        device_text(s, r.rendered, r.ir, r.flavor, r.digest),
    )


# -- reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    device_id: uuid.UUID
    generation: int
    digest: str
    drift: dict[str, Any] | None = None


def report_applied(db: Database, host: Host, reports: list[Report]) -> list[DeviceView]:
    """Move applied generations forward (never back) for this host's devices; keep drift.

    A report for a device of another host, or for a digest that is not the device's
    desired one at that generation, changes nothing. Answers the host's devices
    that still lag after the report.
    """
    with db.write_session() as s:
        own = {r.id: r for r in s.scalars(select(DeviceState).where(_device_filter(s, host)))}
        now = utcnow()
        for rep in reports:
            row = own.get(rep.device_id)
            if row is None:
                raise NotFound(
                    f"device {rep.device_id} is not on host {host.name}", field="devices"
                )
            s.execute(
                update(DeviceState)
                .where(
                    DeviceState.id == rep.device_id,
                    DeviceState.applied_generation < rep.generation,
                    DeviceState.desired_generation >= rep.generation,
                    DeviceState.digest == rep.digest,
                )
                .values(applied_generation=rep.generation, applied_at=now)
            )
            s.execute(
                update(DeviceState)
                .where(DeviceState.id == rep.device_id)
                .values(drift=rep.drift, reported_at=now)
            )
        s.execute(
            update(HostCredential)
            .where(HostCredential.host_id == host.id, HostCredential.revoked_at.is_(None))
            .values(last_seen_at=now)
        )
    with db.read_session() as s:
        return [
            _view(s, r)
            for r in s.scalars(
                select(DeviceState).where(
                    _device_filter(s, host),
                    DeviceState.applied_generation < DeviceState.desired_generation,
                )
            )
        ]


@dataclass(frozen=True)
class HostAgentView:
    """What the console shows of a host's agent: its devices' convergence and credentials."""

    devices: list[DeviceState]
    credentials: list[HostCredential]


def host_agent_view(db: Database, principal: Principal, host_id: uuid.UUID) -> HostAgentView:
    """Devices of the host (anyone who may see the host); credentials for operators only."""
    with db.read_session() as s:
        host = s.get(Host, host_id)
        if host is None:
            raise NotFound("no such host", field="host_id")
        devices = list(
            s.scalars(
                select(DeviceState)
                .where(_device_filter(s, host))
                .order_by(DeviceState.device_type, DeviceState.device_name)
            )
        )
        creds = (
            list(
                s.scalars(
                    select(HostCredential)
                    .where(HostCredential.host_id == host_id)
                    .order_by(HostCredential.created_at)
                )
            )
            if principal.is_operator
            else []
        )
    return HostAgentView(devices, creds)
