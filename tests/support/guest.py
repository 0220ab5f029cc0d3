"""A tiny bootable guest built from Debian packages: the cloud kernel and busybox.

``apt-get download`` fetches ``linux-image-*-cloud-amd64`` and ``busybox-static``
into a cache directory; the kernel is unpacked, and an initramfs is written with a
busybox ``/init`` that loads the virtio NIC modules, brings ``eth0`` up with an
IPv4 address — with ``fuyun.dhcp=1`` on the kernel command line (:data:`DHCP_FLAG`)
by busybox ``udhcpc``, printing ``fuyun-guest-lease IP ROUTER`` (:data:`LEASE`) once
bound; else the ones its hypervisor gave on the kernel command line (``fuyun.ip0=A[,B]``,
each a /32 with a default route on the link, as IPAM allocated them); else one derived
from its MAC (``10.254.<mac[4]>.<mac[5]>/16``, so a prober knows where to ping without
DHCP) — and prints ``fuyun-guest-ready`` on the serial console. Under TCG it reaches
userspace in 2-3 s. Built once and reused: the cache key is the package versions and
the init script.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

READY = "fuyun-guest-ready"
LEASE = "fuyun-guest-lease"
DHCP_FLAG = "fuyun.dhcp=1"
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "guest"

_MODULES = (
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
)

_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in {modules}; do insmod /lib/modules/$m 2>/dev/null; done
ip link set lo up
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /sys/class/net/eth0 ] && break; sleep 0.2; done
mac=$(cat /sys/class/net/eth0/address 2>/dev/null || echo 00:00:00:00:00:00)
b5=$(echo $mac | cut -d: -f5)
b6=$(echo $mac | cut -d: -f6)
ip link set eth0 up
given=$(sed -n 's/.*fuyun\\.ip0=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
if grep -q {dhcp_flag} /proc/cmdline; then
  cat > /bin/dhcp-hook <<'HOOK'
#!/bin/sh
case "$1" in bound|renew)
  ip addr flush dev $interface
  ip addr add $ip/$mask dev $interface
  [ -n "$router" ] && ip route replace default via ${{router%% *}}
  echo {lease} $ip $router > /dev/console
;; esac
HOOK
  chmod 755 /bin/dhcp-hook
  udhcpc -i eth0 -b -t 30 -T 1 -s /bin/dhcp-hook >/dev/null 2>&1
elif [ -n "$given" ]; then
  for a in $(echo "$given" | tr , ' '); do
    case $a in *:*) ;; *) ip addr add $a/32 dev eth0;; esac
  done
  ip route add default dev eth0
else
  ip addr add 10.254.$((0x$b5)).$((0x$b6))/16 dev eth0
fi
echo {ready} $mac
while true; do sleep 3600; done
"""


@dataclass(frozen=True)
class Guest:
    kernel: Path
    initrd: Path
    append: str = "console=ttyS0 quiet panic=-1"


def guest_ip(mac: str) -> str:
    """The IPv4 address the tiny guest gives itself for a NIC with this MAC."""
    parts = mac.split(":")
    return f"10.254.{int(parts[4], 16)}.{int(parts[5], 16)}"


def _kernel_package() -> str:
    out = subprocess.run(
        ["apt-cache", "depends", "linux-image-cloud-amd64"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends: linux-image-"):
            return line.split()[1]
    raise RuntimeError("apt-cache knows no linux-image-cloud-amd64 kernel")


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A ``newc`` cpio archive (the initramfs format) of (path, mode, data) entries."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        raw = name.encode() + b"\0"
        header = "070701" + "".join(
            f"{v:08x}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0)
        )
        out.write(header.encode() + raw)
        pad(110 + len(raw))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def _initramfs(busybox: bytes, modules_root: Path) -> bytes:
    entries: list[tuple[str, int, bytes]] = [
        (d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys", "lib", "lib/modules")
    ]
    entries.append(("bin/busybox", 0o100755, busybox))
    names = []
    for rel in _MODULES:
        path = modules_root / rel
        if path.exists():
            entries.append((f"lib/modules/{path.name}", 0o100644, path.read_bytes()))
            names.append(path.name)
    init = _INIT.format(modules=" ".join(names), ready=READY, lease=LEASE, dhcp_flag=DHCP_FLAG)
    entries.append(("init", 0o100755, init.encode()))
    return gzip.compress(_cpio_newc(entries), compresslevel=6)


def build_guest(cache: Path = DEFAULT_CACHE) -> Guest:
    """Fetch, unpack and assemble the guest once; later calls return the cached files."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions build it once
        package = _kernel_package()
        init_key = hashlib.sha256(_INIT.encode()).hexdigest()[:8]
        kernel = cache / f"{package}.vmlinuz"
        initrd = cache / f"{package}-{init_key}.initrd.gz"
        if kernel.exists() and initrd.exists():
            return Guest(kernel, initrd)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            work = Path(tmp)
            work.chmod(0o755)  # apt's sandbox user must write here
            subprocess.run(
                ["apt-get", "download", "-q", package, "busybox-static"],
                cwd=work,
                check=True,
                capture_output=True,
            )
            root = work / "root"
            for deb in work.glob("*.deb"):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            [vmlinuz] = list((root / "boot").glob("vmlinuz-*"))
            [modules] = list((root / "lib" / "modules").iterdir())
            busybox = (root / "bin" / "busybox").read_bytes()
            initrd_tmp = work / "initrd.gz"
            initrd_tmp.write_bytes(_initramfs(busybox, modules / "kernel"))
            shutil.copyfile(vmlinuz, work / "vmlinuz")
            (work / "vmlinuz").replace(kernel)
            initrd_tmp.replace(initrd)
        return Guest(kernel, initrd)


def wait_ready(serial: Path, timeout_s: float = 180.0) -> None:
    """Poll the guest's serial log until its init says it is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if serial.exists() and READY.encode() in serial.read_bytes():
            return
        time.sleep(0.05)
    tail = serial.read_bytes()[-400:] if serial.exists() else b"(no serial log)"
    raise AssertionError(f"guest not ready in {timeout_s} s: {tail!r}")
