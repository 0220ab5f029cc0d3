"""fuyun: a control plane for multi-tenant virtualized data centers."""

__version__ = "0.1.0"
