"""Who is asking: the authenticated identity every service call is made for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select

from fuyun.domain.enums import Role
from fuyun.domain.errors import Forbidden

S = TypeVar("S", bound=Select[Any])


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID | None
    username: str
    role: Role
    tenant_id: uuid.UUID | None

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def sees_everything(self) -> bool:
        """Operators, and viewers bound to no tenant, read across tenants."""
        return self.tenant_id is None and self.role in (Role.OPERATOR, Role.VIEWER)

    def require_operator(self) -> None:
        if not self.is_operator:
            raise Forbidden("only an operator may do this")

    def require_write(self) -> None:
        if self.role is Role.VIEWER:
            raise Forbidden("a viewer may not change anything")

    def require_tenant_admin(self, tenant_id: uuid.UUID) -> None:
        """Operators, or the admin of ``tenant_id``, may manage its users and quotas."""
        if self.is_operator:
            return
        if self.role is Role.TENANT_ADMIN and self.tenant_id == tenant_id:
            return
        raise Forbidden("only an operator or this tenant's admin may do this")

    def scope(self, stmt: S, tenant_column: Any) -> S:
        """Restrict a query to the caller's tenant, unless it sees everything.

        Every tenant-owned query passes through here, so isolation is decided once.
        """
        if self.sees_everything:
            return stmt
        return stmt.where(tenant_column == self.tenant_id)

    def may_see_tenant(self, tenant_id: uuid.UUID | None) -> bool:
        return self.sees_everything or (tenant_id is not None and tenant_id == self.tenant_id)


SYSTEM = Principal(user_id=None, username="system", role=Role.OPERATOR, tenant_id=None)
