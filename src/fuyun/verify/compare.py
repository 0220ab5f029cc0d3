"""Compiled reachability against intended reachability: leaks and blocks.

Endpoints are partitioned jointly by their class in the compiled analysis and in
the intended one, so a member that a corrupted device treats differently from
its peers ends up in a class of its own and is compared on its own.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from fuyun.verify.evaluate import Service
from fuyun.verify.reachability import Reachability


@dataclass(frozen=True)
class Difference:
    src_port: uuid.UUID
    dst_port: uuid.UUID
    src_ip: str
    dst_ip: str
    tenant_id: uuid.UUID
    services: tuple[Service, ...]
    allowed_by: tuple[str, ...]  # compiled rules that let it through (leaks)


@dataclass
class Comparison:
    leaks: list[Difference] = field(default_factory=list)  # compiled allows, intent does not
    blocks: list[Difference] = field(default_factory=list)  # intent allows, compiled does not


def _class_of(result: Reachability) -> dict[uuid.UUID, int]:
    return {e.port_id: i for i, c in enumerate(result.classes) for e in c.members}


def compare(compiled: Reachability, intended: Reachability) -> Comparison:
    c_of, i_of = _class_of(compiled), _class_of(intended)
    joint: dict[tuple[int, int], list[uuid.UUID]] = defaultdict(list)
    for port, ci in c_of.items():
        joint[(ci, i_of.get(port, -1))].append(port)
    samples = {key: ports[0] for key, ports in joint.items()}
    endpoint = {e.port_id: e for c in compiled.classes for e in c.members}
    by_vrf: dict[uuid.UUID, list[tuple[int, int]]] = defaultdict(list)
    for key, port in samples.items():
        by_vrf[endpoint[port].vrf_id].append(key)
    out = Comparison()
    # Pairs that can have a path: inside a VRF, and across the VRFs a route leak joins.
    groups = [(keys, keys) for keys in by_vrf.values()]
    for leak in compiled.leaks:
        a_keys = by_vrf.get(uuid.UUID(leak.vrf_id), [])
        b_keys = by_vrf.get(uuid.UUID(leak.peer_vrf_id), [])
        groups += [(a_keys, b_keys), (b_keys, a_keys)]
    for sources, targets in groups:
        for a in sources:
            for b in targets:
                if a == b and len(joint[a]) < 2:
                    continue
                got = compiled.reach.get((a[0], b[0]))
                want = intended.reach.get((a[1], b[1])) if a[1] >= 0 and b[1] >= 0 else None
                got_s = set(got.services) if got else set()
                want_s = set(want.services) if want else set()
                s_ep, d_ep = endpoint[samples[a]], endpoint[samples[b]]
                if s_ep.port_id == d_ep.port_id:
                    d_ep = endpoint[joint[b][1]]
                base = dict(
                    src_port=s_ep.port_id,
                    dst_port=d_ep.port_id,
                    src_ip=s_ep.ips[0] if s_ep.ips else "",
                    dst_ip=d_ep.ips[0] if d_ep.ips else "",
                    tenant_id=s_ep.tenant_id,
                )
                if got_s - want_s:
                    extra = tuple(sorted(got_s - want_s))
                    blame = tuple(
                        x
                        for x in (got.allowed_by if got else ())
                        if x.split(":")[0] in {str(v) for v in extra}
                    )
                    out.leaks.append(
                        Difference(
                            **base,
                            services=extra,  # type: ignore[arg-type]
                            allowed_by=blame,
                        )
                    )
                if want_s - got_s:
                    out.blocks.append(
                        Difference(
                            **base,  # type: ignore[arg-type]
                            services=tuple(sorted(want_s - got_s)),
                            allowed_by=(),
                        )
                    )
    return out
