"""Address sets: a security group's member addresses, stored once and versioned.

A rule whose remote side is a group refers to the group's set by name
(``sg_<group>_v4`` / ``_v6``); devices carry the name, not the members. The set's
``generation`` moves whenever its members change, and every device that refers to
it (``device_address_sets``, written when the device is compiled) gets a new desired
generation in the same transaction, so it shows as lagging until re-applied.

Members are rows, not a list in the set's row: a member joining or leaving writes
one member row and one set row, whatever the group's size.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from fuyun.store.models.base import Base
from fuyun.store.types import utcnow


class AddressSet(Base):
    """One (group, family) set: its version and size; the members are in the next table."""

    __tablename__ = "address_sets"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), index=True
    )
    family: Mapped[int]
    generation: Mapped[int] = mapped_column(default=0)
    size: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AddressSetMember(Base):
    """One address of one port in a set.

    ``host_id`` is where the port ran when the row was written: a recompile of a
    host finds the rows of ports that left it (deleted, unbound, moved) by it. No
    foreign key to the port, on purpose: a port's rows must outlive the port until
    the recompile that follows its deletion removes them and moves the set's
    generation (a cascade would drop them silently, and no device would learn).
    """

    __tablename__ = "address_set_members"
    __table_args__ = (Index("ix_address_set_members_host", "host_id"),)

    set_name: Mapped[str] = mapped_column(
        ForeignKey("address_sets.name", ondelete="CASCADE"), primary_key=True
    )
    port_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    address: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    host_id: Mapped[uuid.UUID | None]


class DeviceAddressSet(Base):
    """Device ``device_id`` refers to set ``set_name`` (which may not exist yet: no
    member so far). Written when the device's policy is stored; read to find the
    devices a set change must bump."""

    __tablename__ = "device_address_sets"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("device_states.id", ondelete="CASCADE"), primary_key=True
    )
    set_name: Mapped[str] = mapped_column(String(48), primary_key=True, index=True)
