"""Affinity and anti-affinity groups at host, ToR, module or site level."""

from fuyun.scheduler.framework import Request
from fuyun.scheduler.model import Cluster, HostSlot


def unit_of(host: HostSlot, level: str) -> object:
    return {"host": host.id, "tor": host.tor, "module": host.module, "site": host.site}[level]


class AffinityFilter:
    name = "affinity"

    def reject(self, cluster: Cluster, req: Request, host: HostSlot) -> str | None:
        for g in req.groups:
            unit = unit_of(host, g.level)
            here = g.members_at.get(unit, 0)  # type: ignore[call-overload]
            if g.policy == "anti-affinity" and here > 0:
                return f"anti-affinity: a member of the group already runs on this {g.level}"
            occupied = [u for u, n in g.members_at.items() if n > 0]
            if g.policy == "affinity" and occupied and here == 0:
                return f"affinity: the group's members run on another {g.level}"
        return None
