"""What the IR intends for one packet, in the terms verify uses: the oracle for real tools.

A new flow from ``src`` to ``dst`` passes when the source's egress allows it (if the
source is a port of the device) and the destination's ingress allows it (if the
destination is); a side that is not a port of the device is judged elsewhere.
"""

from __future__ import annotations

from fuyun.policy.ir import Action, DevicePolicy, Endpoint, PortPolicy
from fuyun.verify.evaluate import Service, decide


def port_of(policy: DevicePolicy, endpoint: Endpoint | None) -> PortPolicy | None:
    if endpoint is None:
        return None
    return next(p for p in policy.ports if p.endpoint.port_id == endpoint.port_id)


def allowed(
    policy: DevicePolicy,
    src: Endpoint | None,
    src_ip: str,
    dst: Endpoint | None,
    dst_ip: str,
    svc: Service,
) -> bool:
    sets = policy.set_by_name()
    src_port, dst_port = port_of(policy, src), port_of(policy, dst)
    if src_port is not None:
        rule = decide(src_port.egress, dst_ip, svc, sets)
        if rule is None or rule.action is Action.DENY:
            return False
    if dst_port is not None:
        rule = decide(dst_port.ingress, src_ip, svc, sets)
        if rule is None or rule.action is Action.DENY:
            return False
    return True
