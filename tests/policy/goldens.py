"""The golden cases: (file name, renderer, policy). Regenerate after reviewing a diff:

    .venv/bin/python -m tests.policy.goldens

The golden tests compare rendered text with these files byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fuyun.policy.ir import DevicePolicy
from fuyun.policy.render import comware, iptables, nftables, nxos, openflow
from tests.policy.world import host_policy, leaked_tor_policy, tor_policy, vm_policy

GOLDEN = Path(__file__).parent / "golden"

CASES: list[tuple[str, Callable[[DevicePolicy], str], Callable[[], DevicePolicy]]] = [
    ("h1.nft", nftables.render, host_policy),
    ("h1.flows", openflow.render, host_policy),
    ("vm-web-a.iptables", iptables.render, lambda: vm_policy(1)),
    ("vm-web-b.iptables", iptables.render, lambda: vm_policy(2)),
    ("tor1.nxos", nxos.render, tor_policy),
    ("tor1.comware", comware.render, tor_policy),
    ("tor1-leaks.nxos", nxos.render, leaked_tor_policy),
    ("tor1-leaks.comware", comware.render, leaked_tor_policy),
]


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, renderer, policy in CASES:
        (GOLDEN / name).write_text(renderer(policy()))
        print(f"wrote {GOLDEN / name}")


if __name__ == "__main__":
    main()
