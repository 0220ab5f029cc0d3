"""Standard catalogs of the 2010 era: the server models and VM flavors a fabric is built from.

Delivery in minutes needs standard building blocks: a module is racked from a
handful of server models, and tenants choose from a handful of flavors. These are
the defaults the generator uses and a fabric file usually copies; a site may define
its own, but a host may only be of a model its fabric file lists (see
:mod:`fuyun.fabric.check`).
"""

from __future__ import annotations

from fuyun.fabric.spec import FlavorSpec, ServerModelSpec

#: The 1G workhorse: 2 sockets x 6 cores, 48 GiB, two 1G NICs.
STD_2010_1G = ServerModelSpec(
    name="std-2010-1g", cores=12, ram_gb=48, disk_gb=600, nic_count=2, nic_speed_gbps=1
)
#: The dense virtualization host: 12 cores, 96 GiB, two 10G NICs.
STD_2010_10G = ServerModelSpec(
    name="std-2010-10g", cores=12, ram_gb=96, disk_gb=600, nic_count=2, nic_speed_gbps=10
)
#: Storage-heavy: fewer cores and less RAM, twelve 1 TB disks.
STD_2010_STORAGE = ServerModelSpec(
    name="std-2010-storage", cores=8, ram_gb=32, disk_gb=12_000, nic_count=2, nic_speed_gbps=1
)

SERVER_MODELS: tuple[ServerModelSpec, ...] = (STD_2010_1G, STD_2010_10G, STD_2010_STORAGE)

#: Bandwidth a flavor promises when nothing else is said: 100 Mbit/s per vCPU,
#: so a full 1p8v host of ``s1.small`` VMs stays within one 1G NIC.
DEFAULT_BANDWIDTH_MBPS_PER_VCPU = 100

FLAVORS: tuple[FlavorSpec, ...] = tuple(
    FlavorSpec(
        name=name,
        vcpus=vcpus,
        ram_mb=ram_gb * 1024,
        disk_gb=disk_gb,
        bandwidth_mbps=vcpus * DEFAULT_BANDWIDTH_MBPS_PER_VCPU,
    )
    for name, vcpus, ram_gb, disk_gb in (
        ("s1.small", 1, 2, 20),
        ("s1.medium", 2, 4, 40),
        ("s1.large", 4, 8, 80),
        ("s1.xlarge", 8, 16, 160),
    )
)


def server_model(name: str) -> ServerModelSpec:
    """The standard server model called ``name``; ``KeyError`` if there is none."""
    for model in SERVER_MODELS:
        if model.name == name:
            return model
    raise KeyError(name)


def flavor(name: str) -> FlavorSpec:
    """The standard flavor called ``name``; ``KeyError`` if there is none."""
    for entry in FLAVORS:
        if entry.name == name:
            return entry
    raise KeyError(name)
