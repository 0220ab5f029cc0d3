"""Route leaks: the one way two VRFs route to each other, and only once approved.

A leak joins a network of one VRF to a network (or a prefix) of another. Either
tenant's admin may request one; it is ``pending`` and routes nothing until an
operator approves it. Deleting the row is revoking it. A leak dies with either of
its networks (and with the peer VRF), so no route can outlive what it pointed at.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base, IdMixin, TimestampMixin


class RouteLeak(IdMixin, TimestampMixin, Base):
    __tablename__ = "route_leaks"
    __table_args__ = (Index("ix_route_leaks_state", "state"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    vrf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vrfs.id", ondelete="CASCADE"))
    peer_tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    peer_network_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    peer_vrf_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vrfs.id", ondelete="CASCADE"))
    # Set when the peer is a prefix of the peer VRF rather than a whole network.
    peer_prefix: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # or approved
    requested_by: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None]
    description: Mapped[str] = mapped_column(String(256), default="")
