"""Where the linux driver acts: one network namespace, or the root namespace of a real host.

Every command and netlink socket of the driver goes through a :class:`Place`, so
the same code converges a hypervisor (``Place(None)``) and a namespace a test
made (``Place("fylx-…")``). A namespace that does not exist is an error, never
created behind the caller's back (pyroute2's ``IPRoute(netns=…)`` would create
it unless told ``flags=0``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from pyroute2 import IPRoute
from pyroute2.netlink import NLM_F_REQUEST
from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETGEN, NFTSocket, nfgen_msg
from pyroute2.netns import setns

from fuyun.domain.errors import DriverError

_NETNS_DIR = "/run/netns"


class Place:
    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns or None

    def __str__(self) -> str:
        return f"netns {self.netns}" if self.netns else "the root namespace"

    def exists(self) -> bool:
        return self.netns is None or os.path.exists(os.path.join(_NETNS_DIR, self.netns))

    def _check(self) -> None:
        if not self.exists():
            raise DriverError(f"linux: network namespace {self.netns} does not exist")

    @contextmanager
    def ipr(self) -> Iterator[IPRoute]:
        """A netlink socket in the place; the namespace must exist (``flags=0``)."""
        self._check()
        ipr = IPRoute(netns=self.netns, flags=0) if self.netns else IPRoute()
        try:
            yield ipr
        finally:
            ipr.close()

    def run(self, *args: str, stdin: str | None = None) -> str:
        """Run a tool inside the place; a non-zero exit is a DriverError with its stderr."""
        self._check()
        cmd = ["ip", "netns", "exec", self.netns, *args] if self.netns else list(args)
        try:
            done = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverError(f"linux: {args[0]} failed in {self}: {exc}") from exc
        if done.returncode != 0:
            raise DriverError(
                f"linux: {' '.join(args[:3])} failed in {self}: {done.stderr.strip()}"
            )
        return done.stdout

    def nft_generation(self) -> int:
        """The place's nftables ruleset generation: it moves on every commit to any table.

        One netlink request instead of an ``nft list`` that builds nft's whole cache: the
        driver uses it to know that nothing changed since it last verified a table.
        """
        self._check()
        sock = self._in_place(NFTSocket)
        try:
            reply = sock.request_get(nfgen_msg(), NFT_MSG_GETGEN, msg_flags=NLM_F_REQUEST)
            return int(reply[0].get_attr("NFTA_GEN_ID"))
        finally:
            sock.close()

    def _in_place(self, factory: type[NFTSocket]) -> NFTSocket:
        """A socket opened inside the namespace (a socket stays in the one it was made in);
        only this thread switches, and only for the moment of the call."""
        if self.netns is None:
            return factory()
        saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            setns(self.netns, flags=0)
            return factory()
        finally:
            setns(saved, flags=0)
            os.close(saved)

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-qw", f"{key}={value}")
