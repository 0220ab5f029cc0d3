"""The linux network driver on one Linux-bridge host: apply time and rule-change latency.

Claim: a host with 40 VMs and 200 security-group rules converges in well under a
second, and a rule change is enforced on the wire within tens of milliseconds —
because fuyun's ``table inet fuyun`` classifies ports by one verdict-map lookup
and remote groups by named sets, and ``nft -f`` swaps the whole table atomically.

Baseline, in the same run and the same namespaces: the same compiled policy as a
linear iptables chain per VM (``iptables-restore``, jumps by address, each
remote group expanded to one rule per member — no sets), the way hosts filtered
before nftables sets.

What one run does (root; every name starts with ``fylxb``; all removed at the end):

1. a host namespace and 40 VM ports (veth pairs), two of them real VM namespaces
   with a TCP server; 4 tenants x 10 VMs, each tenant with groups web/db and 25
   rules per group (200 rules: port ranges, CIDRs, remote groups, egress);
2. cold apply (ports + vswitch), then an unchanged re-apply (must be a no-op);
3. ``--changes`` times: a rule opening tcp 9000 on one VM to its tenant's web group
   is added (recompile + render + apply), and a prober inside the other VM's
   namespace connects until the port answers; then the rule is removed again.
   Latency = from the intent change to the first successful connect;
4. the same with the iptables baseline (the nft vswitch table removed first).

``--remote-members N`` adds N members per group that run on other hosts (a partner's group
spans many hosts): one set element each for nftables, one rule per remote-group rule per
VM each for the linear chains.

Run: ``sudo .venv/bin/python benchmarks/bench_linux_driver.py [--changes 50] [--remote-members N]``
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.drivers.network.linux.lab import LinuxLab, sh
from tests.policy.netns_lab import SERVER

from fuyun.domain.hostports import HostPorts, PortBinding
from fuyun.drivers.network.base import AppliedState
from fuyun.drivers.network.linux import LinuxNetworkDriver
from fuyun.policy.compile import GroupRule, PolicySnapshot, compile_device
from fuyun.policy.ir import DevicePolicy, Direction, Endpoint, device_name
from fuyun.policy.render import nftables
from fuyun.policy.render._common import atoms, ordered, set_prefixes

HOST = "bench1"
TENANTS, VMS_PER_TENANT, RULES_PER_GROUP = 4, 10, 25
PROBE = """
import socket, sys
for line in sys.stdin:
    dst, port = line.split()
    s = socket.socket(); s.settimeout(0.05)
    try:
        s.connect((dst, int(port))); print(1, flush=True)
    except OSError:
        print(0, flush=True)
    finally:
        s.close()
"""


class World:
    """4 tenants x 10 VMs, groups web (6 VMs) and db (4), 25 rules per group."""

    def __init__(self, remote_members: int = 0) -> None:
        self.endpoints: list[Endpoint] = []
        self.rules: dict[uuid.UUID, list[GroupRule]] = {}
        self.members: dict[uuid.UUID, dict[int, set[str]]] = {}
        self.web: dict[int, uuid.UUID] = {}
        self._n = 0
        for t in range(TENANTS):
            tenant, web, db = (uuid.UUID(int=(t + 1) << 64 | k) for k in (1, 2, 3))
            self.web[t] = web
            for v in range(VMS_PER_TENANT):
                n = t * VMS_PER_TENANT + v + 1
                port = uuid.UUID(int=n << 100 | n)
                group = web if v < 6 else db
                self.endpoints.append(
                    Endpoint(
                        port,
                        tenant,
                        tenant,
                        tenant,
                        tenant,
                        100 + t,
                        f"fa:16:3e:be:{t:02x}:{v:02x}",
                        (f"10.8.{t}.{10 + v}",),
                        frozenset({group}),
                        HOST,
                        device_name(port),
                    )
                )
            for group, other in ((web, db), (db, web)):
                rules = [self._rule(group, Direction.EGRESS, "any")]
                for i in range(RULES_PER_GROUP - 1):
                    kind = i % 3
                    if kind == 0:
                        rules.append(
                            self._rule(
                                group,
                                Direction.INGRESS,
                                "tcp",
                                1000 + 10 * i,
                                1005 + 10 * i,
                                remote_group=other,
                            )
                        )
                    elif kind == 1:
                        rules.append(
                            self._rule(
                                group,
                                Direction.INGRESS,
                                "tcp",
                                2000 + i,
                                cidr=f"172.{16 + i}.0.0/16",
                            )
                        )
                    else:
                        rules.append(
                            self._rule(
                                group, Direction.INGRESS, "udp", 3000 + i, remote_group=group
                            )
                        )
                self.rules[group] = rules
        for e in self.endpoints:
            for g in e.groups:
                self.members.setdefault(g, {4: set(), 6: set()})[4].update(e.ips)
        # Members of the same groups that run on other hosts: in the sets all the same.
        for k, members in enumerate(self.members.values()):
            members[4].update(
                f"10.{64 + k}.{i // 250}.{1 + i % 250}" for i in range(remote_members)
            )

    def _rule(
        self,
        group: uuid.UUID,
        direction: Direction,
        protocol: str,
        lo: int | None = None,
        hi: int | None = None,
        *,
        cidr: str | None = None,
        remote_group: uuid.UUID | None = None,
    ) -> GroupRule:
        self._n += 1
        return GroupRule(
            uuid.UUID(int=0xF000 + self._n),
            group,
            direction,
            4,
            protocol,
            lo,
            hi if hi is not None or lo is None else lo,
            cidr,
            remote_group,
        )

    def rule_count(self) -> int:
        return sum(len(r) for r in self.rules.values())

    def policy(self) -> DevicePolicy:
        return compile_device(
            PolicySnapshot(rules=self.rules, members=self.members), HOST, "vswitch", self.endpoints
        )

    def ports(self) -> HostPorts:
        return HostPorts(
            HOST,
            tuple(
                PortBinding(
                    str(e.port_id),
                    str(e.port_id),
                    f"vm{i}",
                    str(e.tenant_id),
                    "net",
                    e.vlan,
                    e.mac,
                    e.ips,
                )
                for i, e in enumerate(self.endpoints)
            ),
        )


def iptables_linear(policy: DevicePolicy) -> str:
    """The same policy as a linear chain per VM: jumps by address, members expanded."""
    sets = policy.set_by_name()
    out = ["*filter", ":FORWARD ACCEPT [0:0]"]
    body = ["-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT"]
    for i, port in enumerate(policy.ports):
        ip = port.endpoint.ips[0]
        for direction, rules, verdict in (
            ("o", port.egress, "RETURN"),
            ("i", port.ingress, "ACCEPT"),
        ):
            chain = f"fy{i}{direction}"
            out.append(f":{chain} - [0:0]")
            body.append(f"-A FORWARD {'-s' if direction == 'o' else '-d'} {ip} -j {chain}")
            denies, allows = ordered(rules)
            for action, group in (("DROP", denies), (verdict, allows)):
                for rule in group:
                    for atom in atoms(rule.match):
                        if atom.family != 4:
                            continue
                        remotes = (
                            set_prefixes(sets[atom.remote_set])
                            if atom.remote_set
                            else [atom.remote_cidr]
                            if atom.remote_cidr
                            else [None]
                        )
                        for remote in remotes:
                            parts = [f"-A {chain}"]
                            if remote:
                                parts.append(f"{'-d' if direction == 'o' else '-s'} {remote}")
                            if atom.protocol in ("tcp", "udp"):
                                parts.append(f"-p {atom.protocol}")
                                if atom.ports:
                                    lo, hi = atom.ports
                                    parts.append(
                                        f"--dport {lo}" if lo == hi else f"--dport {lo}:{hi}"
                                    )
                            elif atom.protocol == "icmp":
                                parts.append("-p icmp")
                            body.append(" ".join([*parts, f"-j {action}"]))
            body.append(f"-A {chain} -j DROP")
    return "\n".join([*out, *body, "COMMIT", ""])


def pct(values: list[float], q: float) -> float:
    ordered_values = sorted(values)
    return ordered_values[min(len(ordered_values) - 1, round(q * (len(ordered_values) - 1)))]


def measure_changes(
    changes: int,
    world: World,
    apply: Callable[[DevicePolicy], None],
    prober: subprocess.Popen[str],
    dst: str,
) -> tuple[list[float], list[float]]:
    target = next(e for e in world.endpoints if e.ips[0] == dst)
    group = next(iter(target.groups))
    web = world.web[0]
    latencies, applies = [], []

    def probe() -> bool:
        assert prober.stdin is not None and prober.stdout is not None
        prober.stdin.write(f"{dst} 9000\n")
        prober.stdin.flush()
        return prober.stdout.readline().strip() == "1"

    for _ in range(changes):
        rule = world._rule(group, Direction.INGRESS, "tcp", 9000, remote_group=web)
        t0 = time.perf_counter()
        world.rules[group].append(rule)
        # The driver applies in a thread while the prober connects from t0 on: the port
        # answers the moment the new ruleset is committed, whatever the driver does after
        # (the linux driver reads the table back to fingerprint it for drift detection).
        worker = threading.Thread(target=apply, args=(world.policy(),))
        worker.start()
        while not probe():
            if time.perf_counter() - t0 > 5:
                raise RuntimeError("the opened port never answered")
        latencies.append(time.perf_counter() - t0)
        worker.join()
        applies.append(time.perf_counter() - t0)
        world.rules[group].remove(rule)
        apply(world.policy())
        while probe():
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("the closed port kept answering")
    return latencies, applies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument(
        "--remote-members", type=int, default=0, help="group members on other hosts, per group"
    )
    args = parser.parse_args()
    lab = LinuxLab()
    try:
        world = World(args.remote_members)
        src, dst = world.endpoints[0], world.endpoints[7]  # tenant 0: a web VM and a db VM
        ns = {}
        for e in world.endpoints:
            if e in (src, dst):
                ns[e.port_id] = lab.vm(str(e.port_id), e.mac, list(e.ips))
            else:
                lab.port(str(e.port_id))
        server = lab.spawn(ns[dst.port_id], sys.executable, "-c", SERVER, "9000")
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        prober = subprocess.Popen(
            ["ip", "netns", "exec", ns[src.port_id], sys.executable, "-c", PROBE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        lab.procs.append(prober)
        driver = LinuxNetworkDriver(HOST, lab.host)
        generation = [0]

        def apply_nft(policy: DevicePolicy) -> None:
            text = nftables.render(policy)
            generation[0] += 1
            digest = hashlib.sha256(text.encode()).hexdigest()
            driver.apply(AppliedState("host", HOST, "vswitch", generation[0], digest), text)

        ports = world.ports().to_json()
        t = time.perf_counter()
        driver.apply(
            AppliedState("host", HOST, "ports", 1, hashlib.sha256(ports.encode()).hexdigest()),
            ports,
        )
        ports_s = time.perf_counter() - t
        t = time.perf_counter()
        policy = world.policy()
        text = nftables.render(policy)
        render_s = time.perf_counter() - t
        t = time.perf_counter()
        apply_nft(policy)
        cold_s = time.perf_counter() - t
        state = driver.observe("host", HOST, "vswitch")
        t = time.perf_counter()
        assert state is not None
        driver.apply(state, text)
        noop_s = time.perf_counter() - t
        nft_rules = sh("nft", "list", "table", "inet", "fuyun", ns=lab.host).count("\n")
        print(
            f"host: {len(world.endpoints)} VMs, {world.rule_count()} rules, "
            f"nft table {nft_rules} lines; ports apply {ports_s * 1000:.0f} ms, "
            f"compile+render {render_s * 1000:.0f} ms, vswitch cold apply {cold_s * 1000:.0f} ms, "
            f"unchanged re-apply {noop_s * 1000:.1f} ms",
            flush=True,
        )
        nft_lat, nft_apply = measure_changes(args.changes, world, apply_nft, prober, dst.ips[0])
        print("nftables changes done", flush=True)

        sh("nft", "delete", "table", "inet", "fuyun", ns=lab.host)

        def apply_ipt(policy: DevicePolicy) -> None:
            sh("iptables-restore", ns=lab.host, stdin=iptables_linear(policy))

        ipt_text = iptables_linear(world.policy())
        t = time.perf_counter()
        apply_ipt(world.policy())
        ipt_cold = time.perf_counter() - t
        ipt_rules = ipt_text.count("\n-A ")
        ipt_lat, ipt_apply = measure_changes(args.changes, world, apply_ipt, prober, dst.ips[0])
        print()
        print(f"| {'':34} | nftables (fuyun) | iptables linear | iptables / nftables |")
        print("|---|---|---|---|")
        print(f"| rules on the host | {nft_rules} lines | {ipt_rules} rules | |")
        print(f"| group members on other hosts, per group | {args.remote_members} | | |")
        rows = [
            ("cold apply, ms", cold_s * 1000, ipt_cold * 1000),
            (
                "change -> apply returned p50, ms",
                pct(nft_apply, 0.5) * 1000,
                pct(ipt_apply, 0.5) * 1000,
            ),
            (
                "change -> apply returned p99, ms",
                pct(nft_apply, 0.99) * 1000,
                pct(ipt_apply, 0.99) * 1000,
            ),
            ("change -> enforced p50, ms", pct(nft_lat, 0.5) * 1000, pct(ipt_lat, 0.5) * 1000),
            ("change -> enforced p99, ms", pct(nft_lat, 0.99) * 1000, pct(ipt_lat, 0.99) * 1000),
            (
                "change -> enforced mean, ms",
                statistics.mean(nft_lat) * 1000,
                statistics.mean(ipt_lat) * 1000,
            ),
        ]
        for label, a, b in rows:
            print(f"| {label} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")
        print(f"\n{args.changes} changes each; latencies include recompile + render of the host.")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
