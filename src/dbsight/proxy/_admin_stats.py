"""``/stats/proxy`` on the admin port: what the proxy decided, as JSON for the dashboard —
clients by state, where units of work were routed and why, the result cache's hit ratio,
what the request pipeline rejected and the errors the proxy itself answered. The same plain
counters the ``proxy_*`` metrics read (`_metrics`), for one `ProxyServer`; the routing and
error counters are the process's (every proxy of the process shares them)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ._metrics import CLIENT_STATES, client_errors, routing_decisions

if TYPE_CHECKING:
    from ._server import ProxyServer


def proxy_stats(server: ProxyServer) -> dict[str, Any]:
    states = Counter(session.info.state for session in list(server.sessions))
    cache = server.pooling.cache if server.pooling is not None else None
    cache_doc: dict[str, Any] | None = None
    if cache is not None:
        lookups = cache.hits + cache.misses
        cache_doc = {
            **cache.stats(),
            "hit_ratio": cache.hits / lookups if lookups else None,
        }
    return {
        "started_at": server.started_at,
        "pool_mode": server.config.pool_mode,
        "clients": {state: states.get(state, 0) for state in CLIENT_STATES},
        "clients_total": server.clients_total,
        "routing": [
            {"role": role, "reason": reason, "count": count}
            for (role, reason), count in sorted(routing_decisions.items())
        ],
        "cache": cache_doc,
        "rejected": (
            dict(sorted(server.pipeline.rejected.items())) if server.pipeline is not None else None
        ),
        "errors": dict(sorted(client_errors.items())),
    }
