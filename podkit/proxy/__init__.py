"""The HTTP/1.1 proxy engine shared by the sidecar and the ambassador.

asyncio Protocols with httptools (llhttp) parsing, uvloop when installed. The seam between
the engine and a service is one callable, `Pick`, that chooses the upstream for a request
head; everything else is plain configuration (`ProxySettings`).

Imports point one way: server → downstream → intake → attempt/exchange → connection/upstream;
each callee declares the small base class it calls back through (Listener, RequestIntake's
connection hooks, ClientSide, ResponseSink).
"""

from podkit.proxy.context import Pick
from podkit.proxy.head import RequestHead
from podkit.proxy.server import ProxyServer
from podkit.proxy.settings import ProxySettings
from podkit.proxy.upstream import Upstream

__all__ = ["Pick", "ProxyServer", "ProxySettings", "RequestHead", "Upstream", "compiled"]


def compiled() -> bool:
    """Whether the engine runs as mypyc-compiled extension modules (see setup.py)."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from podkit.proxy import downstream

    return any(str(downstream.__file__).endswith(suffix) for suffix in EXTENSION_SUFFIXES)
