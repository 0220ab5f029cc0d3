"""Settings: embedded defaults, then a TOML file, then the environment (``FUYUN_*``).

The defaults make the whole product run on a laptop: SQLite in the working
directory, the ``fake`` compute driver and the ``sim`` network driver, workflows
run inline by the API process. A deployment writes its settings once in a file
(``FUYUN_CONFIG=/etc/fuyun/fuyun.toml``, keys as the field names below, in the top
table or a ``[fuyun]`` table) and overrides any of them per process with
``FUYUN_<FIELD>`` variables: the environment wins. See docs/deploy.md.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///fuyun.db"
CONFIG_ENV = "FUYUN_CONFIG"
WORKFLOW_RUNNERS = ("inline", "queue")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    compute_driver: str = "fake"
    network_driver: str = "sim"
    # vCPUs a host may hand out per physical core, and RAM per MiB of memory.
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    # Lifetime of tokens minted by sign-in, in seconds; explicit tokens choose their own.
    login_token_ttl_s: int = 12 * 3600
    # Bodies above this size are refused with 413 before they are parsed.
    max_body_bytes: int = 1 << 20
    # Addressing: released IPs wait this long before reuse; MACs start with this OUI.
    ip_quarantine_s: int = 3600
    mac_oui: str = "fa:16:3e"
    # Every tenant VRF gets these private pools to carve network subnets from.
    tenant_pool_v4: str = "10.0.0.0/8"
    tenant_pool_v6: str = "fd00::/8"
    default_prefix_len_v4: int = 24
    # VLAN pool created for a module the first time a network lands in it.
    vlan_min: int = 100
    vlan_max: int = 3999
    vlan_reserved: str = "1002,1003,1004,1005"
    # Network services: VMs are named VM.NETWORK.TENANT.<dns_zone>; DHCP hands out this MTU.
    dns_zone: str = "fuyun.internal"
    network_mtu: int = 1500
    # sFlow collector inside ``fuyun serve``: off at port 0; ``fuyun collector`` defaults to 6343.
    collector_host: str = "0.0.0.0"
    collector_port: int = 0
    # Alerts: POSTed as JSON to this URL when set; a link alert fires above this share of speed.
    alert_webhook_url: str = ""
    # Where rolled-up traffic is kept: ``database`` (the store itself).
    flow_store: str = "database"
    link_alert_threshold: float = 0.9
    # Choose at random among this many best hosts (1: always the best). Several API
    # processes or workers placing at once should use more, so their claims spread.
    placement_subset_size: int = 1
    # Workflows: "inline" runs them in the API process; "queue" records them for
    # `fuyun worker` processes, the API waiting up to workflow_wait_s for the end.
    workflow_runner: str = "inline"
    workflow_lease_s: int = 30
    workflow_wait_s: float = 300.0
    worker_concurrency: int = 4
    # The API process converges devices itself (sim driver) unless host agents do.
    reconcile_in_process: bool = True
    # A replayed Idempotency-Key answers from the store for this long.
    idempotency_ttl_s: int = 24 * 3600
    # Longest a host agent's watch request is held open before answering "no change".
    agent_watch_max_s: float = 30.0
    # A move waits this long for its destination devices to run their new generation.
    migration_converge_timeout_s: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workflow_runner not in WORKFLOW_RUNNERS:
            raise ValueError(f"workflow_runner must be one of {', '.join(WORKFLOW_RUNNERS)}")
        if self.workflow_lease_s < 1:
            raise ValueError("workflow_lease_s must be at least 1")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults < the file named by ``FUYUN_CONFIG`` < ``FUYUN_*`` < ``overrides``."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        path = env.get(CONFIG_ENV)
        if path:
            values.update(load_file(Path(path)))
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"FUYUN_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _convert(f.name, raw, f"FUYUN_{f.name.upper()}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def load_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML file; unknown keys and wrong types are refused by name."""
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{CONFIG_ENV}: cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    table = doc.get("fuyun", doc)
    known = {f.name for f in fields(Settings) if f.name != "extra"}
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValueError(f"{path}: unknown setting '{key}'")
        out[name] = _convert(name, value, f"{path}: {key}")
    return out


def _convert(name: str, raw: Any, where: str) -> Any:
    kind = type(getattr(Settings, name))
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {raw!r}")
        if kind is int and isinstance(raw, float | bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
