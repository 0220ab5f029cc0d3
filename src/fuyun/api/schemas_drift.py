"""Bodies for drift: what the hypervisor runs against what the store says."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from fuyun.api.schemas import In, Name
from fuyun.services.drift import Drift


class DriftPublic(BaseModel):
    host: str
    vm_id: uuid.UUID
    kind: str = Field(description="died | unexpected-running | missing | unknown")
    store_state: str | None = Field(description="the VM's state in the store; null: not there")
    observed: str | None = Field(description="the hypervisor's power state; null: not running")
    vm_name: str | None = None
    vcpus: int | None = None
    ram_mb: int | None = None
    actions: list[str]

    @classmethod
    def of(cls, d: Drift) -> DriftPublic:
        return cls(
            host=d.host,
            vm_id=d.vm_id,
            kind=d.kind.value,
            store_state=d.store_state,
            observed=d.observed,
            vm_name=d.vm_name,
            vcpus=d.vcpus,
            ram_mb=d.ram_mb,
            actions=list(d.actions),
        )


class DriftReport(BaseModel):
    compute_driver: str
    accelerator: str | None = Field(
        None, description="qemu driver: kvm or tcg and why (probed on first use)"
    )
    items: list[DriftPublic]


class DriftAction(In):
    host: Name
    vm_id: uuid.UUID
    tenant: Name | None = Field(None, description="adopting an unknown instance: its tenant")
    flavor: Name | None = Field(None, description="adopting an unknown instance: its flavor")
