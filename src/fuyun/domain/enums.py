"""Closed vocabularies of the domain (see DESIGN.md's table of words)."""

from __future__ import annotations

from enum import StrEnum


class FabricKind(StrEnum):
    """How far a VLAN may span inside a module.

    ``routed-clos`` confines a VLAN to one ToR; ``switched-clos`` carries it across
    the ToRs of the module that need it, through the aggregation pair.
    """

    ROUTED_CLOS = "routed-clos"
    SWITCHED_CLOS = "switched-clos"


class L2Technology(StrEnum):
    """How a switched CLOS builds its big layer 2: a multi-chassis pair or TRILL."""

    VPC = "vpc"
    IRF = "irf"
    TRILL = "trill"


class L2Extension(StrEnum):
    """What an interconnect between two sites does for layer 2."""

    NONE = "none"
    DIRECT = "direct"
    OTV = "otv"
    VPLS = "vpls"

    @property
    def extends_l2(self) -> bool:
        return self is not L2Extension.NONE


class SwitchRole(StrEnum):
    TOR = "tor"
    AGGREGATION = "aggregation"


class SwitchPlatform(StrEnum):
    """The configuration dialect a switch is rendered in."""

    NXOS = "nxos"
    COMWARE = "comware"
    OVS = "ovs"


class EnforcementPoint(StrEnum):
    VM_IPTABLES = "vm-iptables"
    VSWITCH = "vswitch"
    TOR_ACL = "tor-acl"
    VRF = "vrf"
    VEPA = "vepa"


class Hypervisor(StrEnum):
    KVM = "kvm"
    XEN = "xen"


class VSwitchKind(StrEnum):
    OVS = "ovs"
    LINUX_BRIDGE = "linux-bridge"


class HostState(StrEnum):
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    FAILED = "failed"


class Role(StrEnum):
    """Roles, from most to least powerful.

    ``operator`` sees and steers everything; ``tenant-admin`` manages its tenant's
    users, tokens and resources; ``tenant-member`` manages its tenant's resources;
    ``viewer`` reads (its tenant's objects, or everything when it has no tenant).
    """

    OPERATOR = "operator"
    TENANT_ADMIN = "tenant-admin"
    TENANT_MEMBER = "tenant-member"
    VIEWER = "viewer"


class AuditResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
