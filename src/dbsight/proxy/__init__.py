"""``dbsight proxy``: a PostgreSQL wire-protocol proxy that observes every statement it relays.

``dbsight.proxy.protocol`` is the sans-IO codec and session state it is built on: it turns bytes
into message objects and back and tracks what a router, a pool and the observer need to know,
without ever touching a socket, so every protocol rule is a unit test.
"""

from ._config import ProxyConfig, Upstream
from ._listen import ListenError
from ._server import ProxyServer
from ._session import ClientSession

__all__ = ["ClientSession", "ListenError", "ProxyConfig", "ProxyServer", "Upstream"]
