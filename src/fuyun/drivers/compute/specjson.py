"""An instance spec as JSON: how hypervisor drivers keep fuyun's intent beside a VM."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

from fuyun.drivers.compute.base import InstanceSpec, NicSpec


def spec_to_json(spec: InstanceSpec) -> str:
    raw = asdict(spec)
    raw["vm_id"] = str(spec.vm_id)
    raw["nics"] = [{**asdict(n), "port_id": str(n.port_id), "ips": list(n.ips)} for n in spec.nics]
    return json.dumps(raw, sort_keys=True, indent=1)


def spec_from_json(text: str) -> InstanceSpec:
    raw = json.loads(text)
    nics = tuple(
        NicSpec(
            uuid.UUID(n["port_id"]),
            n["mac"],
            int(n["vlan"]),
            n["network"],
            tuple(n.get("ips", ())),
        )
        for n in raw.get("nics", ())
    )
    return InstanceSpec(**{**raw, "vm_id": uuid.UUID(raw["vm_id"]), "nics": nics})
