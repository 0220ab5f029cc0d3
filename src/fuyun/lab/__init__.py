"""The lab: a fabric of Open vSwitch bridges and VM namespaces on one machine."""

from fuyun.lab.lab import Lab, LabStatus, Manifest
from fuyun.lab.topology import LabPlan, plan

__all__ = ["Lab", "LabPlan", "LabStatus", "Manifest", "plan"]
