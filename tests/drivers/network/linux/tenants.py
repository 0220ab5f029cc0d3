"""Two tenants' VMs on one Linux-bridge host, with the policy fuyun compiles for them.

Tenant A (VLAN 100, its own VRF): ``a1`` and ``a2`` in group web, ``a3`` in group
db. Every VM has an IPv4 and an IPv6 address, and every rule exists for both.
web accepts ICMP, tcp 80 and iperf3 (5201-5202) from web; db accepts tcp 5432
from web. Tenant B (VLAN 200, another VRF): ``b1`` and ``b2`` in group pub, which
accepts ICMP, tcp 80 and iperf3 from anywhere — so only the segment separation,
not a missing rule, keeps tenant A out. Every group may send anything.
:meth:`Tenants.open` adds a rule, as a security-group change through the API
would, and the documents are recompiled from scratch each time.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from dataclasses import dataclass, field

from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.drivers.network.base import AppliedState
from fuyun.policy.compile import GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import DevicePolicy, Direction, Endpoint, device_name
from fuyun.policy.render import nftables

HOST = "lx1"
TA, TB = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
WEB, DB, PUB = uuid.UUID(int=0x1E), uuid.UUID(int=0xDB), uuid.UUID(int=0x9B)
_ids = itertools.count(0x1000)


@dataclass(frozen=True)
class Vm:
    name: str
    tenant: uuid.UUID
    vlan: int
    ip: str
    group: uuid.UUID
    n: int

    @property
    def port_id(self) -> uuid.UUID:
        return uuid.UUID(int=(0xE0 + self.n) << 112 | self.n)

    @property
    def ip6(self) -> str:
        return f"2001:db8:7::{self.ip.rsplit('.', 1)[1]}"

    @property
    def mac(self) -> str:
        return f"fa:16:3e:7e:00:{self.n:02x}"

    def endpoint(self) -> Endpoint:
        return Endpoint(
            port_id=self.port_id,
            tenant_id=self.tenant,
            vrf_id=self.tenant,
            network_id=uuid.UUID(int=self.vlan),
            segment_id=uuid.UUID(int=self.vlan),
            vlan=self.vlan,
            mac=self.mac,
            ips=(self.ip, self.ip6),
            groups=frozenset({self.group}),
            host=HOST,
            device=device_name(self.port_id),
        )


VMS = (
    Vm("a1", TA, 100, "10.7.0.11", WEB, 1),
    Vm("a2", TA, 100, "10.7.0.12", WEB, 2),
    Vm("a3", TA, 100, "10.7.0.13", DB, 3),
    Vm("b1", TB, 200, "10.7.0.21", PUB, 4),
    Vm("b2", TB, 200, "10.7.0.22", PUB, 5),
)


def _rule(
    group: uuid.UUID,
    protocol: str,
    lo: int | None = None,
    hi: int | None = None,
    *,
    remote: uuid.UUID | None = None,
    cidr: str | None = None,
    direction: Direction = Direction.INGRESS,
    family: int = 4,
) -> GroupRule:
    return GroupRule(
        uuid.UUID(int=next(_ids)),
        group,
        direction,
        family,
        protocol,
        lo,
        hi if hi is not None else lo,
        cidr,
        remote,
    )


@dataclass
class Tenants:
    rules: dict[uuid.UUID, list[GroupRule]] = field(default_factory=dict)
    generation: int = 0

    def __post_init__(self) -> None:
        self.rules = {WEB: [], DB: [], PUB: []}
        for fam, anywhere in ((4, "0.0.0.0/0"), (6, "::/0")):
            self.rules[WEB] += [
                _rule(WEB, "icmp", remote=WEB, family=fam),
                _rule(WEB, "tcp", 80, remote=WEB, family=fam),
                _rule(WEB, "tcp", 5201, 5202, remote=WEB, family=fam),
            ]
            self.rules[DB] += [_rule(DB, "tcp", 5432, remote=WEB, family=fam)]
            self.rules[PUB] += [
                _rule(PUB, "icmp", cidr=anywhere, family=fam),
                _rule(PUB, "tcp", 80, cidr=anywhere, family=fam),
                _rule(PUB, "tcp", 5201, 5202, cidr=anywhere, family=fam),
            ]
            for group in (WEB, DB, PUB):
                self.rules[group].append(
                    _rule(group, "any", direction=Direction.EGRESS, family=fam)
                )

    def open(self, group: uuid.UUID, port: int, remote: uuid.UUID) -> list[GroupRule]:
        """Allow tcp ``port`` into ``group`` from ``remote``, in both families."""
        rules = [_rule(group, "tcp", port, remote=remote, family=fam) for fam in (4, 6)]
        self.rules[group] += rules
        return rules

    def close(self, rules: list[GroupRule]) -> None:
        for rule in rules:
            self.rules[rule.group_id].remove(rule)

    def policy(self) -> DevicePolicy:
        members = {
            g: {4: {v.ip for v in VMS if v.group == g}, 6: {v.ip6 for v in VMS if v.group == g}}
            for g in self.rules
        }
        snap = PolicySnapshot(rules=self.rules, members=members)
        return compile_device(snap, HOST, "vswitch", [v.endpoint() for v in VMS])

    def vswitch(self) -> tuple[AppliedState, str]:
        """The next generation of the host's vswitch document."""
        text = nftables.render(self.policy())
        self.generation += 1
        return _state("vswitch", self.generation, text)


def ports() -> tuple[AppliedState, str]:
    doc = HostPorts(
        HOST,
        tuple(
            PortBinding(
                str(v.port_id),
                v.name,
                v.name,
                str(v.tenant),
                f"net{v.vlan}",
                v.vlan,
                v.mac,
                (v.ip, v.ip6),
            )
            for v in VMS
        ),
    )
    return _state("ports", 1, doc.to_json())


def _state(point: str, generation: int, text: str) -> tuple[AppliedState, str]:
    return AppliedState(
        "host", HOST, point, generation, hashlib.sha256(text.encode()).hexdigest()
    ), text
