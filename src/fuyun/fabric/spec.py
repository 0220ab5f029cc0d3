"""The fabric file: a whole data center inventory as one validated document.

A fabric is flat lists that refer to each other by name (sites, interconnects,
modules, switches, hosts), so that a file of 100,000 hosts stays greppable and an
error can name the exact list entry and field at fault. Cross-references and
acceptance rules (every host cabled to one ToR, standard models only, …) are
checked by :mod:`fuyun.fabric.check`, not here: this module validates each entry
on its own.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fuyun.domain.enums import (
    EnforcementPoint,
    FabricKind,
    HostState,
    Hypervisor,
    L2Extension,
    L2Technology,
    SwitchPlatform,
    SwitchRole,
    VSwitchKind,
)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
Positive = Annotated[int, Field(ge=1, le=2**31 - 1)]

FABRIC_FORMAT_VERSION = 1


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class ServerModelSpec(_Entry):
    """A standard server model: the building block of a module."""

    name: Name
    cores: Positive
    ram_gb: Positive
    disk_gb: Positive
    nic_count: Positive = 2
    nic_speed_gbps: Positive = 10


class FlavorSpec(_Entry):
    name: Name
    vcpus: Positive
    ram_mb: Positive
    disk_gb: Positive
    bandwidth_mbps: Count = 0


class SiteSpec(_Entry):
    name: Name
    city: str = Field(default="", max_length=128)
    description: str = Field(default="", max_length=1024)
    aggregate: IPv4Network | IPv6Network | None = None


class InterconnectSpec(_Entry):
    """A link between two sites; ``l2_extension`` says whether VLANs may cross it."""

    name: Name
    site_a: Name
    site_b: Name
    l2_extension: L2Extension = L2Extension.NONE
    bandwidth_gbps: Positive = 10


class ModuleLinkSpec(_Entry):
    """A link between two modules of one site; ``l2_extension`` lets VLANs cross it."""

    name: Name
    module_a: Name
    module_b: Name
    l2_extension: L2Extension = L2Extension.NONE
    bandwidth_gbps: Positive = 10


class ModuleSpec(_Entry):
    """A network module (pod); its fabric kind decides how far a VLAN may span."""

    name: Name
    site: Name
    fabric_kind: FabricKind
    l2_technology: L2Technology | None = None
    enforcement_point: EnforcementPoint = EnforcementPoint.VSWITCH

    @model_validator(mode="after")
    def _technology_fits_kind(self) -> ModuleSpec:
        if self.fabric_kind is FabricKind.SWITCHED_CLOS and self.l2_technology is None:
            raise ValueError("a switched-clos module needs l2_technology (vpc, irf or trill)")
        if self.fabric_kind is FabricKind.ROUTED_CLOS and self.l2_technology is not None:
            raise ValueError("a routed-clos module has no l2_technology")
        return self


class SwitchSpec(_Entry):
    """A ToR or aggregation switch with the table sizes that bound layer 2."""

    name: Name
    module: Name
    role: SwitchRole
    platform: SwitchPlatform = SwitchPlatform.NXOS
    mgmt_address: str | None = Field(default=None, max_length=64)
    port_count: Positive = 48
    uplink_gbps: Positive = 40
    uplinks: list[Name] = Field(default_factory=list)
    mac_capacity: Positive
    arp_capacity: Positive
    vlan_capacity: Annotated[int, Field(ge=1, le=4094)]
    acl_capacity: Positive


class HostSpec(_Entry):
    """A physical server under exactly one ToR."""

    name: Name
    tor: Name | None
    model: Name
    mgmt_address: str | None = Field(default=None, max_length=64)
    # The ToR interface the host is cabled to; derived from its index when absent.
    tor_port: str | None = Field(
        default=None, max_length=32, pattern=r"^[A-Za-z][A-Za-z0-9/._:-]*$"
    )
    hypervisor: Hypervisor = Hypervisor.KVM
    vswitch: VSwitchKind = VSwitchKind.OVS
    max_vms: Annotated[int, Field(ge=1, le=64)] = 8
    state: HostState = HostState.ACTIVE


class FabricSpec(_Entry):
    """A whole fabric. See ``docs/fabric-format.md`` for the documented schema."""

    version: int = FABRIC_FORMAT_VERSION
    name: Name = "fabric"
    server_models: list[ServerModelSpec] = Field(default_factory=list)
    flavors: list[FlavorSpec] = Field(default_factory=list)
    sites: list[SiteSpec] = Field(default_factory=list)
    interconnects: list[InterconnectSpec] = Field(default_factory=list)
    modules: list[ModuleSpec] = Field(default_factory=list)
    module_links: list[ModuleLinkSpec] = Field(default_factory=list)
    switches: list[SwitchSpec] = Field(default_factory=list)
    hosts: list[HostSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_version(self) -> FabricSpec:
        if self.version != FABRIC_FORMAT_VERSION:
            raise ValueError(f"unsupported fabric format version {self.version}")
        return self
