"""Real tools for real-tool checks: found, or skipped (failed under FUYUN_REQUIRE_ALL=1)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.capabilities import missing


def tool(capability: str, binary: str, *, root: bool = False) -> str:
    """The path of ``binary``, or a skip that names the Debian package to install."""
    path = shutil.which(binary) or next(
        (str(p) for d in ("/usr/sbin", "/sbin") if (p := Path(d) / binary).exists()), None
    )
    if path is None:
        missing(capability, f"{binary} not found (apt-get install {capability})")
    if root and os.geteuid() != 0:
        missing(capability, f"{binary} needs root (CAP_NET_ADMIN)")
    return path


def run(args: list[str], text: str | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a tool with ``text`` on stdin; never raises on a non-zero exit."""
    return subprocess.run(
        args, input=text, capture_output=True, text=True, timeout=60, check=False, **kw
    )  # type: ignore[call-overload]
