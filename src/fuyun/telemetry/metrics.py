"""Prometheus counters for the collector, in the default registry (exposed at /metrics).

Totals only — per-VM series would be unbounded; per-tenant byte counters are
bounded by the number of tenants.
"""

from __future__ import annotations

from prometheus_client import Counter

DATAGRAMS = Counter("fuyun_sflow_datagrams", "sFlow datagrams received")
MALFORMED = Counter("fuyun_sflow_malformed_datagrams", "sFlow datagrams dropped as malformed")
SAMPLES = Counter("fuyun_sflow_samples", "sFlow samples decoded", ["kind"])
UNATTRIBUTED = Counter(
    "fuyun_sflow_unattributed_samples", "flow samples matching no VM port in the port map"
)
TRAFFIC_BYTES = Counter(
    "fuyun_traffic_bytes", "estimated bytes per tenant (sampled x rate)", ["tenant", "direction"]
)
ALERTS = Counter("fuyun_traffic_alerts", "service-quality alerts raised", ["kind"])
WEBHOOK_FAILURES = Counter("fuyun_alert_webhook_failures", "alert webhook POSTs that failed")
