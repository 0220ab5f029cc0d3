"""Settings, read from the environment (``FUYUN_*``) with embedded defaults.

The defaults make the whole product run on a laptop: SQLite in the working
directory, the ``fake`` compute driver and the ``sim`` network driver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///fuyun.db"


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
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"FUYUN_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(cls, f.name, "")) if f.default is not None else str
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"FUYUN_{f.name.upper()}: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
