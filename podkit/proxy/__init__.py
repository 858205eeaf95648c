"""The HTTP/1.1 proxy engine shared by the sidecar and the ambassador.

asyncio Protocols with httptools (llhttp) parsing, uvloop when installed. The seam between
the engine and a service is one callable, `Pick`, that chooses the upstream for a request
head; everything else is plain configuration (`ProxySettings`).
"""

from podkit.proxy.server import ProxyServer
from podkit.proxy.settings import ProxySettings
from podkit.proxy.upstream import Upstream

__all__ = ["ProxyServer", "ProxySettings", "Upstream"]
