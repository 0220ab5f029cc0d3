"""The host agent: converge one host's switch to its desired documents, on level."""

from fuyun.agent.reconciler import AgentLoop, HostAgent, HostPass
from fuyun.agent.source import DesiredStateSource, HostDocument, StoreSource

__all__ = [
    "AgentLoop",
    "DesiredStateSource",
    "HostAgent",
    "HostDocument",
    "HostPass",
    "StoreSource",
]
