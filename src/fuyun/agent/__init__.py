"""The host agent: converge one host's switch to its desired documents, on level."""

from fuyun.agent.netservices import NetworkServicesAgent, StoreNetworkServices
from fuyun.agent.reconciler import AgentLoop, HostAgent, HostPass
from fuyun.agent.source import DesiredStateSource, HostDocument, StoreSource

__all__ = [
    "AgentLoop",
    "DesiredStateSource",
    "HostAgent",
    "HostDocument",
    "HostPass",
    "NetworkServicesAgent",
    "StoreNetworkServices",
    "StoreSource",
]
